# Source this file: creates (or reuses) the project's virtual environment in .venv
# and installs the course package with everything the tests and notebooks need.
# Reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRSKY_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python >= 3.11 is needed (nbgrader 0.9.6 requires it); '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)." >&2
    echo "       Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"

stamp="$VENV/.crsky-installed"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing the course package and its dependencies (about a minute)"
    python -m pip install --quiet --upgrade pip
    # cpu: TensorFlow's CPU build where it has wheels (Linux x86_64), the standard build on
    # macOS and Linux on ARM (markers in pyproject.toml); JAX for the second backend.
    # environment.yml installs the same extras.
    python -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[test,cpu,jax]"
    # Left behind by a newer jsonschema (see constraints.txt); nothing needs it, and nbformat
    # would still import it. pip never removes what nothing needs.
    python -m pip uninstall --quiet --yes rfc3987-syntax 2>/dev/null || true
    echo "$want" > "$stamp"
fi
# Validate (JupyterLab's button, nbgrader validate) reads <environment>/etc/jupyter from any
# folder: the grader's time per cell instead of nbgrader's 30 s.
mkdir -p "$VENV/etc/jupyter"
cmp -s "$ROOT/scripts/nbgrader_config.py" "$VENV/etc/jupyter/nbgrader_config.py" \
    || cp "$ROOT/scripts/nbgrader_config.py" "$VENV/etc/jupyter/nbgrader_config.py"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}"
# Keep TensorFlow's C++ start-up notices quiet.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
