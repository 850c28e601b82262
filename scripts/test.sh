#!/usr/bin/env bash
# The test suite: everything on the TensorFlow backend, then the Keras-layer tests
# again on the JAX backend and on the PyTorch backend (installed here if missing: the
# CPU wheel on this project's package index, 192 MB; a plain PyPI may serve the much
# larger CUDA build: CRSKY_TEST_TORCH=0 skips that leg). Extra arguments go to every
# pytest run. The system programs the grading tests start (bubblewrap, a PostgreSQL
# server) are installed first where they are missing (scripts/system_packages.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
source "$(dirname "${BASH_SOURCE[0]}")/system_packages.sh"
cd "$ROOT"
start=$SECONDS
# Tests marked slow (larger-scale repeats of what faster tests check) run with CRSKY_TEST_SLOW=1.
if [ "${CRSKY_TEST_SLOW:-0}" = 1 ]; then all="" keras="keras"; else all="not slow" keras="keras and not slow"; fi
# The modules run on one pytest-xdist worker per core (at most 4: each worker starts kernels and
# sandboxes of its own), a module's tests on one worker; CRSKY_TEST_WORKERS=0 runs them in this process.
workers="${CRSKY_TEST_WORKERS:-$(python -c 'import os; print(min(len(os.sched_getaffinity(0)), 4))')}"
parallel=(-n "$workers" --dist loadfile)
echo "==> tests on the TensorFlow backend${all:+ ($all)}, $workers workers"
KERAS_BACKEND=tensorflow python -m pytest "${parallel[@]}" ${all:+-m "$all"} "$@"
echo "==> Keras tests on the JAX backend"
KERAS_BACKEND=jax python -m pytest "${parallel[@]}" -m "$keras" "$@"
if [ "${CRSKY_TEST_TORCH:-1}" = 1 ] && ! python -c "import torch" 2>/dev/null; then
    echo "==> installing PyTorch for the third backend"
    python -m pip install --quiet -c constraints.txt torch
fi
if [ "${CRSKY_TEST_TORCH:-1}" = 1 ]; then
    echo "==> Keras tests on the PyTorch backend"
    KERAS_BACKEND=torch python -m pytest "${parallel[@]}" -m "$keras" "$@"
else
    echo "==> Keras tests on the PyTorch backend: skipped (CRSKY_TEST_TORCH=0)"
fi
echo "==> the whole suite took $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
