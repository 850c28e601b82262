"""The sandboxed Jupyter kernel: the kernelspec nbgrader and nbclient start, and its launcher."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

from crsky.grading.sandbox.box import Sandbox
from crsky.grading.sandbox.config import INNER_CONNECTION_FILE, Config, SandboxError
from crsky.grading.sandbox.paths import python_installation



def write_kernelspec(data_dir, name="crsky-sandbox", config=None, display_name="Python 3 (sandboxed)",
                     launcher_python=None):
    """Write ``<data_dir>/kernels/<name>/{kernel.json,sandbox.json}``; returns the folder.

    ``data_dir`` is what ``JUPYTER_DATA_DIR`` points to for nbgrader/nbclient. The kernel is
    ``config.python``; the launcher runs as the grader with ``launcher_python`` (default
    this interpreter), and must be able to import this package."""
    config = dataclasses.replace(config or Config())
    if config.python_paths is None:
        config.python_paths = python_installation(config.python)
    folder = Path(data_dir) / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sandbox.json").write_text(config.to_json())
    spec = {
        "argv": [launcher_python or sys.executable, "-m", __package__, "kernel", "--config",
                 str(folder / "sandbox.json"), "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False, "sandbox": "bubblewrap"},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return folder


def _die_with_parent(signum):
    """Get ``signum`` when the process that started us (nbclient/nbgrader) dies, so that a
    grader killed abruptly leaves no sandbox behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    expected = os.environ.get("JPY_PARENT_PID")
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os.kill(os.getpid(), signum)  # the parent is already gone


def launch_kernel(config_path, connection_file, extra_args=()):
    """The kernelspec's entry point: run ipykernel for ``connection_file`` in a sandbox whose
    working folder is the current folder. Returns the kernel's exit status."""
    config = Config.load(config_path)
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc":
        print("sandbox: the kernel has no network; start it with KernelManager.transport='ipc' and "
              "KernelManager.ip='/absolute/path/kernel' (nbgrader: --KernelManager.transport=ipc "
              "--KernelManager.ip=...)", file=sys.stderr)
        return 2
    ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
    extra_hide = [os.path.dirname(os.path.abspath(connection_file)), os.path.dirname(os.path.abspath(config_path))]
    box = Sandbox(os.getcwd(), config, extra_hide=extra_hide, ipc=(info["ip"], ports),
                  data_files={INNER_CONNECTION_FILE: Path(connection_file).read_bytes()})
    stopping = []

    def on_interrupt(signum, frame):
        pid = box.main_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def on_terminate(signum, frame):
        stopping.append(signum)
        box.kill()

    _die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_terminate)
    signal.signal(signal.SIGHUP, on_terminate)
    try:
        with box:
            proc = box.popen([config.python, "-m", "ipykernel_launcher", "-f", INNER_CONNECTION_FILE,
                              *extra_args])
            code = proc.wait()
    except SandboxError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 3
    return 128 + stopping[0] if stopping else code
