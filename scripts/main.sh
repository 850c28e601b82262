#!/usr/bin/env bash
# The main job, end to end on CPU: simulate the default sky maps, train the reference
# DGCNN, evaluate it next to the pair-count baseline, write plots to out/.
# Extra arguments go to `python -m crsky.main` (see --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$ROOT"
python -m crsky.main "$@"
