"""Measure what the sandbox costs: kernel start (start to first execute reply), ``import
tensorflow`` in a kernel, and a bare command through :func:`sandbox.run`, each sandboxed
and plain, interleaved so that both see the same machine load.

    python -m bench.sandbox [--repeat 5] [--tf-repeat 2]

Prints one line per measurement and a summary (min and median, seconds).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from crsky.course import COURSE_ROOT
from crsky.grading import sandbox

TF_CELL = ("import os, time; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
           "t = time.perf_counter(); import tensorflow; print(time.perf_counter() - t)")


def kernel_session(name, ip, cwd, code=None):
    from jupyter_client.manager import KernelManager

    t = time.perf_counter()
    km = KernelManager(kernel_name=name, transport="ipc", ip=ip)
    km.start_kernel(cwd=cwd)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    kc.execute_interactive("1", timeout=60, output_hook=lambda m: None)
    start = time.perf_counter() - t
    inner = None
    if code:
        out = []
        kc.execute_interactive(code, timeout=300,
                               output_hook=lambda m: out.append(m["content"].get("text", ""))
                               if m["msg_type"] == "stream" else None)
        inner = float("".join(out).split()[-1])
    t = time.perf_counter()
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    return start, inner, time.perf_counter() - t


def summary(label, values):
    return f"{label:42s} min {min(values):6.3f} s  median {statistics.median(values):6.3f} s  (n={len(values)})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tf-repeat", type=int, default=2)
    args = parser.parse_args()
    ok, reason = sandbox.probe()
    print("probe:", ok, reason)
    base = tempfile.mkdtemp(prefix="sandbox-bench-")
    os.chmod(base, 0o755)
    work = os.path.join(base, "work")
    os.mkdir(work)
    os.environ["JUPYTER_DATA_DIR"] = os.path.join(base, "data")
    sandbox.write_kernelspec(os.environ["JUPYTER_DATA_DIR"], "sbx", sandbox.Config(ro_paths=[str(COURSE_ROOT)]))
    ip = os.path.join(base, "rt", "kernel")
    os.makedirs(os.path.dirname(ip))
    results = {k: [] for k in ("plain start", "sandboxed start", "plain shutdown", "sandboxed shutdown",
                               "plain import tensorflow (in kernel)", "sandboxed import tensorflow (in kernel)",
                               "plain /bin/true", "sandbox.run /bin/true",
                               "plain python -c 'import tensorflow'", "sandbox.run python -c 'import tensorflow'")}
    for i in range(args.repeat):
        for name, label in (("python3", "plain"), ("sbx", "sandboxed")):
            start, _, stop = kernel_session(name, ip, work)
            results[f"{label} start"].append(start)
            results[f"{label} shutdown"].append(stop)
            print(f"kernel {label}: start {start:.3f} s, shutdown {stop:.3f} s", flush=True)
        t = time.perf_counter()
        subprocess.run(["/bin/true"])
        results["plain /bin/true"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sandbox.run(["/bin/true"], work)
        results["sandbox.run /bin/true"].append(time.perf_counter() - t)
    for i in range(args.tf_repeat):
        for name, label in (("python3", "plain"), ("sbx", "sandboxed")):
            _, inner, _ = kernel_session(name, ip, work, TF_CELL)
            results[f"{label} import tensorflow (in kernel)"].append(inner)
            print(f"import tensorflow in a {label} kernel: {inner:.2f} s", flush=True)
        code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True)
        results["plain python -c 'import tensorflow'"].append(time.perf_counter() - t)
        t = time.perf_counter()
        res = sandbox.run([sys.executable, "-c", code], work, ro_paths=[str(COURSE_ROOT)])
        assert res.returncode == 0, res.stderr
        results["sandbox.run python -c 'import tensorflow'"].append(time.perf_counter() - t)
    print()
    for label, values in results.items():
        if values:
            print(summary(label, values))


if __name__ == "__main__":
    main()
