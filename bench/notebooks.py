"""Benchmark: execute every solution notebook top to bottom at a size and time it.

Runs copies of ``solutions/*/*.ipynb`` (in a temporary folder: nothing is written next to
the sources) in order, with nbclient, at ``--size`` (``small``, ``cpu`` or ``gpu``: the
``CRSKY_SIZE`` switch), prints the seconds per notebook, the cells that raised and the lines
that report accuracies, and can keep the executed notebooks with their plots.

    python -m bench.notebooks --size cpu
    python -m bench.notebooks --size gpu --keep executed/     # on a GPU machine
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from crsky.course import ASSIGNMENTS, COURSE_ROOT as ROOT
REPORTED = ("accuracy", "size '", "training,", "AUC")


def execute_solutions(work, assignments=ASSIGNMENTS, timeout=1800):
    """Copy ``solutions/`` (no saved models) into the folder ``work`` and execute the
    notebooks there in order with nbclient, errors recorded in their outputs. Yields
    ``(assignment, executed notebook, seconds)``."""
    import nbformat
    from nbclient import NotebookClient

    shutil.copytree(ROOT / "solutions", work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.keras"))
    for assignment in assignments:
        path = Path(work) / assignment / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        yield assignment, nb, time.perf_counter() - start


def run(size, assignments, keep=None, timeout=1800):
    """Execute the notebooks; returns ``{assignment: (seconds, errors, reported lines)}``."""
    import nbformat

    os.environ["CRSKY_SIZE"] = size
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for assignment, nb, seconds in execute_solutions(work, assignments, timeout):
            errors, lines = [], []
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        errors.append(f"{output['ename']}: {output['evalue']}"[:300])
                    elif output.get("output_type") == "stream" and output.get("name") == "stdout":
                        lines += [line for line in output["text"].splitlines()
                                  if any(word in line for word in REPORTED) and "step" not in line]
            results[assignment] = (seconds, errors, lines)
            print(f"{assignment}: {seconds:.0f} s, {len(errors)} cells raised", flush=True)
            for line in lines + errors:
                print(f"    {line}", flush=True)
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, Path(keep) / f"{assignment}.{size}.ipynb")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["small", "cpu", "gpu"], default="small")
    parser.add_argument("--assignments", nargs="+", choices=ASSIGNMENTS, default=ASSIGNMENTS)
    parser.add_argument("--keep", help="folder for the executed notebooks")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run")
    args = parser.parse_args()
    # Stopped from outside (timeout): exit through Python, so that nbclient shuts the kernel down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    results = run(args.size, args.assignments, args.keep, args.timeout)
    total = sum(seconds for seconds, _, _ in results.values())
    print(f"\nsize {args.size!r}, {os.cpu_count()} CPU cores: " +
          ", ".join(f"{a} {s:.0f} s" for a, (s, _, _) in results.items()) + f"; total {total:.0f} s")
    sys.exit(1 if any(errors for _, errors, _ in results.values()) else 0)


if __name__ == "__main__":
    main()
