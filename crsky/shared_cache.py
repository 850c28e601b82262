"""Simulate, once, every sky-map file the notebooks load, into a folder many users read.

    python -m crsky.shared_cache /opt/crsky/cache --sizes small cpu     # a CPU image
    python -m crsky.shared_cache /opt/crsky/cache --sizes small gpu     # a GPU image

Point ``CRSKY_SHARED_CACHE`` at that folder (read-only for users) and
:func:`crsky.dataset.load_sky_maps` reads these files instead of simulating 250-430 MB
into every user's ``~/.cache/crsky``. A simulation not found there (another size, seed
or preset) is still simulated into the user's own cache.
"""

import argparse
import sys
import time
from pathlib import Path

from crsky.experiment import DATA_SEED, PRESET, SIZES


def notebook_simulations(size):
    """``(preset, n_maps, seed)`` of every simulation the notebooks load at ``size``
    (a :class:`crsky.course.Size`); kept in step with the notebooks by a test."""
    n_maps = {
        600,                        # 02_kernel: a few maps to try the layer on
        min(size.n_maps, 10000),    # 01_sky
        size.n_maps,                # 03_training, 04_graph
    }
    return [(PRESET, n, DATA_SEED) for n in sorted(n_maps)]


def build(folder, sizes=("small", "cpu", "gpu"), processes=1):
    """Simulate into ``folder`` what the notebooks load at each of ``sizes``; files already
    there and valid are kept. Returns the paths."""
    from crsky.dataset import load_sky_maps

    wanted = sorted({sim for name in sizes for sim in notebook_simulations(SIZES[name])}, key=lambda s: s[1])
    paths = []
    for preset, n_maps, seed in wanted:
        start = time.perf_counter()
        load_sky_maps("simulate", preset=preset, n_maps=n_maps, seed=seed, cache_dir=folder,
                      processes=processes, progress=False)
        path = next(Path(folder).glob(f"sky_{preset}_{n_maps}_seed{seed}_v*.npz"))
        path.chmod(0o644)  # mkstemp made it private: every user reads it
        print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB, {time.perf_counter() - start:.1f} s)")
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.shared_cache", description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small", "cpu", "gpu"])
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    build(args.folder, args.sizes, args.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
