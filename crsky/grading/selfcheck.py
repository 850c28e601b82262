"""The students' self-check moved to :mod:`crsky.selfcheck` (``python -m crsky.selfcheck``);
this name stays so that notebooks released before the move still check themselves."""

import sys

from crsky.selfcheck import GUARD, SelfCheckError, check, check_file, check_notebook, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
