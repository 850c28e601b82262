"""All the benchmarks in one run: training speed per Keras backend with the naive layer's
ratio (bench_training.py), the CPU training levers as ratios against the step of the
recipe the notebooks replaced, and that recipe against the new one, trained from the same
seed on the same maps in the same run (training_recipes.py: training time, wall and CPU,
and test accuracy of each, as ratios), simulator throughput (simulator.py) and grading
seconds per submission (grading.py), each in its own process, then their headline lines
together.

    python -m bench.all             # CPU here: about 25 minutes
    python -m bench.all --quick     # fewer steps, maps and students: about 11 minutes

bench/gpu_check.sh is the GPU counterpart, for a machine without TensorFlow or nbgrader.
"""

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_training import default_configs

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configs = default_configs()
    naive = "naive-tensorflow+xla" if "tensorflow" in configs else "naive-jax"
    runs = [
        ("training", ["bench_training", "--steps", "10" if args.quick else "30", "--configs", *configs, naive]),
        ("training recipes", ["training_recipes", "--n-maps", "2500" if args.quick else "6000",
                              "--lever-maps", "384" if args.quick else "768", "--rounds", "2" if args.quick else "3"]),
        ("simulator", ["simulator", "--n-maps", "10000" if args.quick else "50000"]),
    ]
    if importlib.util.find_spec("nbgrader"):
        runs.append(("grading", ["grading", "--students", "2" if args.quick else "6", "--workers", "1", "2"]))
    else:
        print("grading: skipped (nbgrader is not installed)")
    summary = []
    for name, command in runs:
        print(f"\n== {name}: python -m bench.{' '.join(command)}", flush=True)
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", f"bench.{command[0]}", *command[1:]], text=True, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(run.stdout, end="", flush=True)
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        summary.append((name, status, time.perf_counter() - start, lines))
    print("\n== summary")
    for name, status, seconds, lines in summary:
        print(f"{name}: {status}, {seconds:.0f} s")
        for line in lines:
            if any(word in line for word in ("ms/step", "maps/s", "per notebook", " / old:", "x (CPU")) \
                    or line.strip().endswith("x"):
                print(f"    {line.strip()}")
    sys.exit(0 if all(status == "ok" for _, status, _, _ in summary) else 1)


if __name__ == "__main__":
    main()
