"""``python -m crsky.grading.sandbox``: the sandbox's command line (also the kernelspec's launcher)."""

import sys

from crsky.grading.sandbox.cli import main

sys.exit(main())
