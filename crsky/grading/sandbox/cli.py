"""The command line: ``python -m crsky.grading.sandbox probe | run | kernel | write-kernelspec``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from crsky.grading.sandbox.box import Sandbox, probe, run
from crsky.grading.sandbox.config import Config
from crsky.grading.sandbox.kernel import launch_kernel, write_kernelspec



# ------------------------------------------------------------------ command line
def main(argv=None):
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_probe = sub.add_parser("probe", help="can a sandbox be built here?")
    p_probe.add_argument("--config")
    p_run = sub.add_parser("run", help="run a command in a sandbox")
    p_run.add_argument("--config")
    p_run.add_argument("--workdir", default=".")
    p_run.add_argument("--hide", action="append", default=[])
    p_run.add_argument("--ro", action="append", default=[])
    p_run.add_argument("--timeout", type=float)
    p_run.add_argument("--dry-run", action="store_true", help="print the command line and bwrap's options")
    p_run.add_argument("argv", nargs=argparse.REMAINDER)
    p_kernel = sub.add_parser("kernel", help="start a sandboxed ipykernel (kernelspec argv)")
    p_kernel.add_argument("--config", required=True)
    p_kernel.add_argument("connection_file")
    p_kernel.add_argument("extra", nargs=argparse.REMAINDER)
    p_spec = sub.add_parser("write-kernelspec", help="write a kernelspec folder")
    p_spec.add_argument("data_dir")
    p_spec.add_argument("--name", default="crsky-sandbox")
    p_spec.add_argument("--python", default=sys.executable)
    p_spec.add_argument("--ro", action="append", default=[])
    p_spec.add_argument("--hide", action="append", default=[])
    args = parser.parse_args(argv)
    if args.command == "kernel":
        return launch_kernel(args.config, args.connection_file, args.extra)
    config = Config.load(args.config) if getattr(args, "config", None) else Config()
    if args.command == "probe":
        ok, reason = probe(config)
        print(("ok: " if ok else "no sandbox: ") + reason)
        return 0 if ok else 1
    if args.command == "run":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if args.dry_run:
            config.hide, config.ro_paths = config.hide + args.hide, config.ro_paths + args.ro
            with Sandbox(args.workdir, config) as box:
                cmd, fds, _ = box.command(command)
                for fd in fds:
                    os.close(fd)
                box._fds = []
                print(shlex.join(cmd))
                print("bwrap options (--args FD):")
                print(shlex.join(box.last_args).replace(" --", "\n  --"))
                for host, inside, how in box.hidden:
                    print(f"hidden: {host} -> {inside} ({how})")
                for host, why in box.not_hidden:
                    print(f"nothing to hide: {host} ({why})")
            return 0
        result = run(command, args.workdir, hide=args.hide, ro_paths=args.ro, timeout=args.timeout, config=config)
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        return 124 if result.timed_out else result.returncode
    if args.command == "write-kernelspec":
        config = Config(python=args.python, ro_paths=args.ro, hide=args.hide)
        print(write_kernelspec(args.data_dir, args.name, config))
        return 0
    return 2
