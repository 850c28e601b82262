"""Benchmark: simulator throughput (maps/s) and peak memory, writing a file as the CLI does.

Each configuration runs in its own process so that its peak resident memory is its own.

    python -m bench.simulator                       # 50,000 textbook maps, 1 and 2 processes
    python -m bench.simulator --n-maps 10000 --presets textbook jf12
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(preset, n_maps, processes, chunk_size):
    import resource

    from crsky.simulate import write_simulation

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_simulation(os.path.join(tmp, "sky.npz"), preset, n_maps, seed=1, chunk_size=chunk_size,
                                processes=processes, progress=False)
        elapsed = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 2 ** 20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "maps_per_s": n_maps / elapsed, "file_mb": size_mb,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_peak_rss_mb": children}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-maps", type=int, default=50000)
    parser.add_argument("--presets", nargs="+", default=["textbook"])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        preset, n_maps, processes, chunk = args.worker
        worker(preset, int(n_maps), int(processes), int(chunk))
        return
    print(f"simulator: {args.n_maps} maps per run, chunk {args.chunk_size}, {os.cpu_count()} CPU cores")
    baseline = None
    for preset in args.presets:
        for processes in args.processes:
            run = subprocess.run([sys.executable, "-m", "bench.simulator", "--worker", preset, str(args.n_maps),
                                  str(processes), str(args.chunk_size)], capture_output=True, text=True, cwd=ROOT)
            if run.returncode:
                print(f"{preset} x{processes} FAILED:\n{run.stderr[-2000:]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            baseline = baseline or r["maps_per_s"]
            print(f"{preset:9s} processes {processes}: {r['maps_per_s']:8,.0f} maps/s ({r['seconds']:.1f} s, "
                  f"{r['maps_per_s'] / baseline:.2f}x the first row), peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(workers {r['worker_peak_rss_mb']:.0f} MB), file {r['file_mb']:.0f} MB")


if __name__ == "__main__":
    main()
