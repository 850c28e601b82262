#!/usr/bin/env bash
# Install the course into a Jupyter environment: the steps docker/Dockerfile runs, usable on
# any Python >= 3.11 environment (a JupyterHub image, a VM, a test's fresh venv).
#
#   bash docker/install_course.sh [REPOSITORY]      (default: the folder above this script)
#
# 1. the course package, nbgrader, JupyterLab, TensorFlow and the single-user server a JupyterHub
#    spawns (jupyterhub-singleuser, from the jupyterhub package) at the versions of constraints.txt;
# 2. nbgrader's extensions: students get the assignment list and Validate (environment level);
#    the folder $CRSKY_INSTRUCTOR_CONFIG adds the formgrader, course list and create-assignment
#    for instructors (their pods set JUPYTER_CONFIG_PATH to it);
# 3. the course's nbgrader_config.py (course id, exchange root) for everyone;
# 4. the simulations the notebooks load, made once into the read-only $CRSKY_SHARED_CACHE.
#
# Environment (defaults in brackets):
#   PYTHON                  the environment's python [python3]
#   CRSKY_VARIANT           cpu: tensorflow-cpu; cuda: tensorflow[and-cuda] (CUDA from pip) [cpu]
#   CRSKY_SHARED_CACHE      folder for the shared simulations; empty: none [/opt/crsky/cache]
#   CRSKY_CACHE_SIZES       sizes to simulate into it [cpu: "small cpu"; cuda: "small gpu"]
#   CRSKY_INSTRUCTOR_CONFIG the instructors' extra Jupyter config folder [/etc/crsky/instructor]
set -euo pipefail

SRC="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
PYTHON="${PYTHON:-python3}"
VARIANT="${CRSKY_VARIANT:-cpu}"
CACHE="${CRSKY_SHARED_CACHE-/opt/crsky/cache}"
INSTRUCTOR="${CRSKY_INSTRUCTOR_CONFIG:-/etc/crsky/instructor}"
say() { echo "==> install_course: $*"; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python >= 3.11 is needed (nbgrader 0.9.6); $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    exit 1
fi
tf_version="$(sed -n 's/^tensorflow-cpu==\([0-9][0-9.]*\).*/\1/p' "$SRC/constraints.txt")"
[ -n "$tf_version" ] || { echo "error: no tensorflow-cpu pin in $SRC/constraints.txt" >&2; exit 1; }
case "$VARIANT" in
    cpu) tensorflow="tensorflow-cpu==$tf_version"; sizes="${CRSKY_CACHE_SIZES:-small cpu}" ;;
    cuda) tensorflow="tensorflow[and-cuda]==$tf_version"; sizes="${CRSKY_CACHE_SIZES:-small gpu}" ;;
    *) echo "error: CRSKY_VARIANT must be cpu or cuda, got '$VARIANT'" >&2; exit 1 ;;
esac

say "1. the course package, nbgrader, JupyterLab, jupyterhub-singleuser, $tensorflow (pinned by constraints.txt)"
# A copy of the sources: building the wheel must leave nothing in the repository.
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/LICENSE" "$SRC/edgeconv.py" "$SRC/crsky" "$build/"
"$PYTHON" -m pip install --no-cache-dir --quiet -c "$SRC/constraints.txt" \
    "$build" nbgrader jupyterlab notebook nbclient ipykernel jupyterhub "$tensorflow"

say "2. nbgrader extensions: students get the assignment list and Validate"
"$PYTHON" -m jupyter labextension disable --level=sys_prefix \
    @jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list
# Locked: JupyterLab's plugin manager cannot switch them back on (the server extensions stay off anyway).
"$PYTHON" -m jupyter labextension lock --level=sys_prefix \
    @jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list
"$PYTHON" -m jupyter server extension disable --sys-prefix \
    nbgrader.server_extensions.formgrader nbgrader.server_extensions.course_list
mkdir -p "$INSTRUCTOR/labconfig"
cp "$SRC/docker/jupyter/instructor/labconfig/page_config.json" "$INSTRUCTOR/labconfig/"
cp "$SRC/docker/jupyter/instructor/jupyter_server_config.json" "$SRC/docker/jupyter/instructor/nbgrader_config.py" "$INSTRUCTOR/"
chmod -R a+rX "$INSTRUCTOR"
say "   instructors: JUPYTER_CONFIG_PATH=$INSTRUCTOR adds the formgrader, course list, create assignment"

say "3. the course's nbgrader_config.py (course id, exchange root)"
env_config="$("$PYTHON" -c 'import sys; print(sys.prefix)')/etc/jupyter"
mkdir -p "$env_config"
cp "$SRC/docker/jupyter/nbgrader_config.py" "$env_config/nbgrader_config.py"

if [ -n "$CACHE" ]; then
    say "4. shared simulations ($sizes) in $CACHE, read-only for users"
    # shellcheck disable=SC2086  # the sizes are separate arguments
    "$PYTHON" -m crsky.shared_cache "$CACHE" --sizes $sizes
    chmod 0755 "$CACHE"
    chmod 0444 "$CACHE"/*.npz
else
    say "4. no shared simulations (CRSKY_SHARED_CACHE is empty)"
fi
say "done: $("$PYTHON" -c 'import crsky, nbgrader, keras, jupyterhub; print("crsky", crsky.__version__, "nbgrader", nbgrader.__version__, "keras", keras.__version__, "jupyterhub", jupyterhub.__version__)')"
