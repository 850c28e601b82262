"""Label-leak check of every preset: per-map statistics that are not street physics
(energy moments, dipole and quadrupole in galactic and equatorial coordinates, row
order) against the labels; see crsky/leakcheck.py.

    python -m bench.leaks                                # this simulator
    python -m bench.leaks --simulator /path/to/checkout  # another checkout's simulator

With ``--simulator`` the maps are made by that checkout's ``python -m crsky.simulate``
(in a process of its own, with that checkout first on its path) and read back here; the
statistics are always this checkout's.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from crsky.fileformat import load_file
from crsky.leakcheck import leak_report
from crsky.presets import PRESETS
from crsky.simulate import SIMULATOR_VERSION, simulate


def other_simulator(checkout, preset, n_maps, seed):
    """Maps of ``preset`` made by the simulator of another checkout (its command line)."""
    checkout = os.path.abspath(checkout)
    environment = dict(os.environ, PYTHONPATH=checkout)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sky.npz")
        subprocess.run([sys.executable, "-m", "crsky.simulate", "--preset", preset, "--n-maps", str(n_maps),
                        "--seed", str(seed), "-o", path], cwd=checkout, env=environment, check=True,
                       stdout=subprocess.DEVNULL)
        arrays = load_file(path)
        version = subprocess.run([sys.executable, "-c", "from crsky.simulate import SIMULATOR_VERSION as v; print(v)"],
                                 cwd=checkout, env=environment, check=True, capture_output=True, text=True)
    arrays["version"] = version.stdout.strip()
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.leaks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulator", default=None, help="a checkout whose crsky.simulate makes the maps")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--n-maps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--n-sigma", type=float, default=4.0)
    args = parser.parse_args(argv)
    where = os.path.abspath(args.simulator) if args.simulator else "this checkout"
    print(f"simulator from {where}; {args.n_maps} maps per preset, seed {args.seed}; "
          f"a statistic leaks if |AUC - 0.5| > {args.n_sigma:g} sigma")
    for preset in args.presets:
        start = time.perf_counter()
        if args.simulator:
            sim = other_simulator(args.simulator, preset, args.n_maps, args.seed)
        else:
            sim = dict(simulate(preset, args.n_maps, seed=args.seed), version=SIMULATOR_VERSION)
        report = leak_report(sim["data"], sim["label"], args.n_sigma)
        error = report[0][2]
        worst = max(report, key=lambda r: abs(r[1] - 0.5))
        leaks = [r for r in report if r[3]]
        print(f"\n{preset} (simulator {sim['version']}): sigma {error:.4f}, worst {worst[0]} AUC {worst[1]:.3f} "
              f"({(worst[1] - 0.5) / error:+.1f} sigma); {len(leaks)} leak(s) ({time.perf_counter() - start:.0f} s)")
        for name, auc, _, _ in leaks:
            print(f"  LEAK {name}: AUC {auc:.3f} ({(auc - 0.5) / error:+.1f} sigma)")


if __name__ == "__main__":
    main()
