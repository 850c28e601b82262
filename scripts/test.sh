#!/usr/bin/env bash
# The test suite: everything on the TensorFlow backend, then the Keras-layer tests
# again on the JAX backend. Extra arguments go to both pytest runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$ROOT"
echo "==> tests on the TensorFlow backend"
KERAS_BACKEND=tensorflow python -m pytest "$@"
echo "==> Keras tests on the JAX backend"
KERAS_BACKEND=jax python -m pytest -m keras "$@"
