#!/usr/bin/env bash
# The grading kernel: a Python kernel without network access and with resource limits, for
# running students' code. grade.py installs it as the kernelspec "crsky-sandbox".
#   sandbox_kernel.sh PYTHON CONNECTION_FILE   start the kernel
#   sandbox_kernel.sh --probe                  exit 0 when the sandbox works on this machine
# Limits: 8 GiB address space, 512 processes, 2 GiB per written file, 1024 open files.
# Not isolated: the file system (the kernel runs as the grader's user) -- see grading/README.md.
set -euo pipefail
limits=(--as=$((8 * 1024 * 1024 * 1024)) --nproc=512 --fsize=$((2 * 1024 * 1024 * 1024)) --nofile=1024)
if [ "$(id -u)" = 0 ]; then namespace=(unshare --net); else namespace=(unshare --net --map-root-user); fi
if [ "${1:-}" = --probe ]; then
    exec "${namespace[@]}" -- prlimit "${limits[@]}" -- true
fi
exec "${namespace[@]}" -- prlimit "${limits[@]}" -- "$1" -m ipykernel_launcher -f "$2"
