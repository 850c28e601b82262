#!/usr/bin/env bash
# All the GPU checks in one run on a GPU machine (JAX with CUDA and PyTorch there, no
# TensorFlow, no Keras, no Jupyter): bench.gpu_check (recipes, the step without Keras'
# loop, the PyTorch peer), the solution notebooks at the full size (bench.notebooks), and
# bench.bench_training for the backends there. Logs and executed notebooks go to $OUT.
#
# Prepare once here (Python 3.12 wheels for the machine; packages its image has are left out):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d /tmp/whl \
#     keras==3.15.1 namex==0.1.0 optree==0.20.0 nbclient nbformat ipykernel
#   then copy to .whl/ all but absl_py attrs h5py markdown_it_py mdurl ml_dtypes numpy packaging
#   psutil pygments python_dateutil rich typing_extensions tzdata (the image has them).
# Then, on the GPU machine with .whl/ beside the repository:  bash bench/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
# JAX takes 75 % of the GPU's memory at start by default; leave room for the PyTorch peer.
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.5 CRSKY_CACHE=/tmp/crsky_cache PATH="/tmp/site/bin:$PATH"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__)"
} 2>&1 | tee "$OUT/gpu_check.log"
timeout -k 10 "${GPU_CHECK_TIMEOUT:-270}" python3 -m bench.gpu_check --json "$OUT/gpu_check.json" 2>&1 \
  | tee -a "$OUT/gpu_check.log"
timeout -k 10 "${NOTEBOOKS_TIMEOUT:-200}" python3 -m bench.notebooks --size gpu --keep "$OUT" 2>&1 \
  | grep --line-buffered -v "Kernel is running over TCP" | tee "$OUT/notebooks.log"
timeout -k 10 "${BENCH_TIMEOUT:-100}" python3 -m bench.bench_training --steps 50 --configs jax torch naive-jax 2>&1 \
  | tee "$OUT/bench_training.log"
grep -A20 "^== summary" "$OUT/gpu_check.log"
