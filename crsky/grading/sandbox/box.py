"""The sandbox itself (:class:`Sandbox`: bubblewrap in namespaces of its own, a file system
built from nothing), :func:`run` for any command and :func:`probe`."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crsky.grading.sandbox.config import (ETC_ENTRIES, FORBIDDEN_WORKDIRS, SANDBOX_HOME, SANDBOX_USER, SYSTEM_ENTRIES,
                                          Config, RunResult, SandboxError)
from crsky.grading.sandbox.paths import (ancestors, depth, is_within, memfd, minimal_roots, python_installation,
                                         traversable, which)
from crsky.grading.sandbox.uids import UidLease, kill_uid
from crsky.grading.sandbox.workdir import chown_tree, sanitize_workdir



# ------------------------------------------------------------------ the sandbox
class Sandbox:
    """One sandbox: a uid lease, a runtime folder, a bwrap command, clean-up.

    Use as a context manager::

        with Sandbox(workdir, config) as box:
            proc = box.popen(["python", "-c", "print(1)"], stdout=subprocess.PIPE)
            proc.wait()

    ``extra_hide``: more paths to hide. ``ipc``: ``(ip, ports)`` of a kernel's ipc transport.
    ``data_files``: ``{inside_path: bytes}`` put into the sandbox read-only.
    """

    def __init__(self, workdir, config=None, extra_hide=(), ipc=None, data_files=None, log=None):
        self.config = config or Config()
        self.workdir = os.path.realpath(workdir)
        self.extra_hide = list(extra_hide)
        self.ipc = ipc
        self.data_files = dict(data_files or {})
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.is_root = os.geteuid() == 0
        self.lease = None
        self.instance = None
        self.uid = self.gid = None
        self.owner = None
        self.proc = None
        self.symlinks = []
        self.hidden = []       # (host path, inside path, how)
        self.not_hidden = []   # (host path, why it needed nothing)
        self._fds = []
        self._info_r = None
        self._child_pid = None

    # ---------------------------------------------------------------- setup
    def __enter__(self):
        try:
            self._check_workdir()
            root = self.config.runtime_root or (
                "/run/crsky-sandbox" if self.is_root else
                os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(),
                             f"crsky-sandbox-{os.getuid()}"))
            os.makedirs(root, mode=0o755 if self.is_root else 0o700, exist_ok=True)
            if self.is_root:
                self.lease = UidLease(root, self.config.uid_base, self.config.uid_count)
                self.uid = self.gid = self.lease.uid
                for stale in Path(root).glob(f"u{self.uid}-*"):  # left by a launcher killed with SIGKILL
                    shutil.rmtree(stale, ignore_errors=True)
            else:
                self.uid, self.gid = os.getuid(), os.getgid()
            self.instance = tempfile.mkdtemp(prefix=f"u{self.uid}-", dir=root)
            os.chmod(self.instance, 0o755)
            st = os.stat(self.workdir)
            self.owner = (st.st_uid, st.st_gid)
            if self.is_root:
                chown_tree(self.workdir, self.uid, self.gid)
            if self.ipc:
                self._prepare_ipc()
            return self
        except BaseException:
            self._cleanup()
            raise

    def _check_workdir(self):
        w = self.workdir
        if not os.path.isdir(w):
            raise SandboxError(f"the working folder {w} does not exist")
        if depth(w) < 2 or any(is_within(w, f) for f in FORBIDDEN_WORKDIRS):
            raise SandboxError(f"refusing {w} as a sandbox's writable working folder")
        protected = list(self.config.ro_paths) + self._python_paths()
        for path in protected:
            if is_within(os.path.realpath(path), w):
                raise SandboxError(f"the working folder {w} holds {path}, which must stay read-only")

    def _python_paths(self):
        if self.config.python_paths is not None:
            return list(self.config.python_paths)
        return python_installation(self.config.python)

    def _prepare_ipc(self):
        ip, ports = self.ipc
        if not os.path.isabs(ip):
            raise SandboxError(f"KernelManager.ip must be an absolute path for the sandbox, got {ip!r}")
        folder = os.path.dirname(os.path.normpath(ip))
        if depth(folder) < 2 or folder in ("/var/tmp", "/dev/shm") or is_within(self.workdir, folder):
            raise SandboxError(f"KernelManager.ip={ip!r}: its folder is mounted privately in the sandbox, so it "
                               "must be a folder of its own (e.g. <grading work folder>/jupyter/kernel), not "
                               "/tmp itself nor the notebook's folder or one above it")
        private = os.path.join(self.instance, "ipc")
        os.mkdir(private, 0o700)
        if self.is_root:
            os.chown(private, self.uid, self.gid)
        os.makedirs(os.path.dirname(ip), mode=0o700, exist_ok=True)
        for port in ports:
            link = f"{ip}-{port}"
            target = os.path.join(private, f"{os.path.basename(ip)}-{port}")
            if len(link.encode()) > 107:
                raise SandboxError(f"the ipc socket path {link} is too long for a Unix socket (107 bytes)")
            if os.path.lexists(link):
                if os.path.islink(link) or stat.S_ISSOCK(os.lstat(link).st_mode):
                    os.unlink(link)   # left over from an earlier kernel
                else:
                    raise SandboxError(f"{link} exists and is not a socket")
            os.symlink(target, link)
            self.symlinks.append(link)

    # ---------------------------------------------------------------- the mount plan
    def _plan(self):
        """Mount operations ``(inside_path, kind, source)``, applied parents first."""
        ops = []  # (dest, order, kind, arg)

        def bind(src, dest, kind="ro"):
            ops.append((dest, 0, kind, src))

        for name in SYSTEM_ENTRIES:
            host = "/" + name
            if os.path.islink(host):
                ops.append((host, 0, "symlink", os.readlink(host)))
            elif os.path.isdir(host):
                bind(host, host)
        for name in ETC_ENTRIES:
            if os.path.lexists("/etc/" + name) and os.path.exists("/etc/" + name):
                bind("/etc/" + name, "/etc/" + name)
        binds_ro = minimal_roots([os.path.realpath(p) for p in self._python_paths() + list(self.config.ro_paths)
                                   if os.path.exists(p)])
        for path in binds_ro:
            bind(path, path)
        size = self.config.limits.tmpfs_size
        for path in (SANDBOX_HOME, "/tmp", "/var/tmp"):
            ops.append((path, 0, "tmpfs", size))
        bind(self.workdir, self.workdir, "rw")
        if self.ipc:
            ops.append((os.path.dirname(self.ipc[0]), 0, "rw", os.path.join(self.instance, "ipc")))

        # every bound tree, to find where a hidden host path shows up inside
        trees = [(src, dest) for dest, _, kind, src in ops if kind in ("ro", "rw")]
        hide = [os.path.abspath(p) for p in list(self.config.hide) + self.extra_hide]
        if self.config.hide_workdir_siblings:
            # The working folder inside a read-only tree (e.g. the course repository) would
            # show its neighbours (other students' copies): hide the tree's top folder that
            # holds it; the working folder itself is mounted again on top.
            covering = [src for src, dest in trees if src != self.workdir and is_within(self.workdir, src)]
            if covering:
                deepest = max(covering, key=depth)
                top = os.path.join(deepest, os.path.relpath(self.workdir, deepest).split("/")[0])
                if top != self.workdir:
                    hide.append(top)
        for host in hide:
            ops.extend(self._hide_ops(host, trees))
        kept = self._drop_redundant_hides(ops)
        for dest, _, kind, host in ops:
            if kind.startswith("hide-"):
                if any(op[0] == dest and op[2] == kind for op in kept):
                    self.hidden.append((host, dest, "tmpfs" if kind == "hide-dir" else "/dev/null"))
                else:
                    self.not_hidden.append((host, "already inside a hidden folder"))
        ops = kept
        for inside, data in self.data_files.items():
            ops.append((inside, 0, "data", data))
        ops.sort(key=lambda op: (depth(op[0]), op[1]))
        return ops

    @staticmethod
    def _drop_redundant_hides(ops):
        """A hide inside a hidden folder is dropped (it would re-create the name as an empty
        mount point), unless a bind between the two makes that part visible again."""
        hidden_dirs = [dest for dest, _, kind, _ in ops if kind == "hide-dir"]
        binds = [dest for dest, _, kind, _ in ops if kind in ("ro", "rw")]
        out = []
        for op in ops:
            dest, _, kind, _ = op
            if kind.startswith("hide-") and any(
                    d != dest and is_within(dest, d)
                    and not any(is_within(b, d) and b != d and is_within(dest, b) for b in binds)
                    for d in hidden_dirs):
                continue
            out.append(op)
        return out

    def _hide_ops(self, host, trees):
        if not os.path.lexists(host):
            self.not_hidden.append((host, "does not exist"))
            return []
        real = os.path.realpath(host)
        if real == self.workdir:
            raise SandboxError(f"cannot hide {host}: it is the sandbox's working folder")
        if real == "/":
            raise SandboxError("cannot hide /")
        st = os.stat(real)
        out = []
        for src, dest in trees:
            if not is_within(real, src):
                continue
            inside = os.path.normpath(os.path.join(dest, os.path.relpath(real, src)))
            if not traversable(ancestors(real, src), self.uid, self.gid):
                self.not_hidden.append((host, f"not reachable by uid {self.uid} (permissions)"))
                continue
            if stat.S_ISDIR(st.st_mode):
                out.append((inside, 1, "hide-dir", host))
            else:
                if st.st_nlink > 1:
                    raise SandboxError(f"cannot hide {host}: it has {st.st_nlink} hard links, another "
                                       "name may stay visible; hide its folder instead")
                out.append((inside, 1, "hide-file", host))
        if not out and not any(h == host for h, _ in self.not_hidden):
            self.not_hidden.append((host, "outside every folder the sandbox sees"))
        return out

    # ---------------------------------------------------------------- the command
    def environment(self, extra=None):
        """The complete environment inside the sandbox."""
        home = SANDBOX_HOME
        python_bin = os.path.dirname(os.path.abspath(self.config.python))
        env = {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home, "USER": SANDBOX_USER, "LOGNAME": SANDBOX_USER, "SHELL": "/bin/sh",
            "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "IPYTHONDIR": f"{home}/.ipython",
            "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
            "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
            "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
            "JUPYTER_PLATFORM_DIRS": "1",
            "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "XDG_CACHE_HOME": f"{home}/.cache",
            "CRSKY_CACHE": f"{home}/.cache/crsky",
            "PYTHONNOUSERSITE": "1",
            # ipykernel: no parent poller (its parent is the sandbox's pid 1) and no
            # "Ctrl-C will not work" banner on the grader's terminal
            "JPY_PARENT_PID": "1",
        }
        for name in self.config.pass_env:
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.config.env)
        env.update(extra or {})
        return env

    def _passwd(self):
        return (f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                f"{SANDBOX_USER}:x:{self.uid}:{self.gid}:{SANDBOX_USER}:{SANDBOX_HOME}:/bin/sh\n"
                f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n").encode()

    def _group(self):
        return (f"root:x:0:\n{SANDBOX_USER}:x:{self.gid}:\nnogroup:x:65534:\n").encode()

    def bwrap_args(self, env):
        """The bwrap options (passed through ``--args FD``, so that ``/proc/1/cmdline`` inside
        shows none of the host paths). Opens memfds for the data files (see ``self._fds``)."""
        args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--hostname", "sandbox", "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--dev", "/dev", "--proc", "/proc",
                 "--size", str(self.config.limits.tmpfs_size), "--tmpfs", "/dev/shm"]
        data = dict(self.data_files)
        data.setdefault("/etc/passwd", self._passwd())
        data.setdefault("/etc/group", self._group())
        self.data_files = data
        plan = self._plan()
        for host, why in self.not_hidden:
            if "permissions" in why:
                self.log(f"sandbox: warning: {host} was not hidden: {why}; it stays unreadable to "
                         "the sandbox only as long as its permissions say so")
        staged = self._staging([arg for _, _, kind, arg in plan if kind in ("ro", "rw")])
        remount = []
        for dest, _, kind, arg in plan:
            if kind == "symlink":
                args += ["--symlink", arg, dest]
            elif kind in ("ro", "rw"):
                source = staged.get(arg, arg)
                args += ["--ro-bind" if kind == "ro" else "--bind", source, dest]
            elif kind == "tmpfs":
                args += ["--size", str(arg), "--perms", "0700" if dest == SANDBOX_HOME else "1777",
                         "--tmpfs", dest]
            elif kind == "hide-dir":
                # empty; made read-only at the end (deeper mounts, e.g. the working folder, may
                # still need mount points created in it)
                args += ["--size", str(64 * 1024), "--perms", "0555", "--tmpfs", dest]
                remount.append(dest)
            elif kind == "hide-file":
                args += ["--ro-bind", "/dev/null", dest]
            elif kind == "data":
                fd = memfd("sandbox-data", arg)
                self._fds.append(fd)
                args += ["--perms", "0444", "--ro-bind-data", str(fd), dest]
        # the tmpfs root itself read-only (it has no size limit); mounts on it keep their modes
        for dest in sorted(remount, key=depth, reverse=True):
            args += ["--remount-ro", dest]
        args += ["--remount-ro", "/", "--chdir", self.workdir]
        return args

    def _staging(self, sources):
        """Bind sources that the sandbox uid cannot reach on the host (a Python under /root,
        mode 0700; a working folder under pytest's 0700 temporary folder...) are bound by root
        onto ``<instance>/stage/<n>`` in a private mount namespace first (``unshare --mount``
        + ``mount --rbind``, see :meth:`command`), and bwrap binds them from there.
        Returns ``{host path: staged path}``."""
        self._stage = []
        if not self.is_root:
            return {}
        staged = {}
        for src in sources:
            if src in staged or traversable(ancestors(src), self.uid, self.gid):
                continue
            target = os.path.join(self.instance, "stage", str(len(staged)))
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if os.path.isdir(src):
                os.mkdir(target, 0o755)
            else:
                open(target, "w").close()
            staged[src] = target
            self._stage.append((src, target))
        return staged

    def command(self, argv, env_extra=None):
        """The full host command line and the fds it needs: ``(cmd, pass_fds, env)``."""
        env = self.environment(env_extra)
        args = self.bwrap_args(env)
        info_r, info_w = os.pipe()
        self._info_r = info_r
        args += ["--info-fd", str(info_w)]
        self.last_args = args
        args_fd = memfd("bwrap-args", b"\0".join(a.encode() for a in args) + b"\0")
        self._fds += [args_fd, info_w]
        cmd = [which(self.config.bwrap), "--args", str(args_fd), "--", *argv]
        if self.is_root:
            cmd = [which("setpriv"), f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *cmd]
        cmd = [which("prlimit"), *self.config.limits.prlimit_args(), "--", *cmd]
        if self.config.limits.nice:
            cmd = [which("nice"), "-n", str(int(self.config.limits.nice)), *cmd]
        if self._stage:
            script = "set -e; " + "; ".join(
                f"{shlex.quote(which('mount'))} -n --rbind {shlex.quote(src)} {shlex.quote(dst)}"
                for src, dst in self._stage) + '; exec "$@"'
            cmd = [which("unshare"), "--mount", "--propagation", "private", "--",
                   "/bin/sh", "-c", script, "sandbox-stage", *cmd]
        # bwrap itself gets the clean environment (else /proc/1/environ inside shows the grader's)
        outer_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        return cmd, list(self._fds), outer_env

    def popen(self, argv, env_extra=None, **kwargs):
        """Start ``argv`` in the sandbox (working folder = cwd inside). ``kwargs`` go to Popen."""
        cmd, fds, outer_env = self.command(argv, env_extra)
        self.last_command = cmd
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=fds, env=outer_env, start_new_session=True,
                                         close_fds=True, **kwargs)
        finally:
            for fd in fds:
                os.close(fd)
            self._fds = []
        return self.proc

    def sandbox_pid(self, timeout=2.0):
        """Host pid of the sandbox's pid 1 (bwrap's init), from ``--info-fd``."""
        if self._child_pid is None and self._info_r is not None:
            data, deadline = b"", time.monotonic() + timeout
            while time.monotonic() < deadline:
                ready, _, _ = select.select([self._info_r], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(self._info_r, 4096)
                if not chunk:
                    break
                data += chunk
            try:
                self._child_pid = int(json.loads(data)["child-pid"])
            except (ValueError, KeyError):
                return None
        return self._child_pid

    def main_pid(self):
        """Host pid of the command run in the sandbox (the child of the sandbox's init)."""
        init = self.sandbox_pid()
        if init is None:
            return None
        try:
            children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def kill(self, grace=2.0):
        """End everything in the sandbox: SIGKILL to the sandbox's pid 1 (the kernel then kills
        every process of its PID namespace, and bwrap reaps it and exits), then, if bwrap is
        still there, to bwrap itself (its --die-with-parent chain does the rest)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        init = self.sandbox_pid(timeout=0.5)
        if init is not None and self.proc.poll() is None:
            # bwrap (alive: checked above) has not reaped its child, so the pid is still its
            try:
                os.kill(init, signal.SIGKILL)
                self.proc.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass

    # ---------------------------------------------------------------- clean-up
    def __exit__(self, *exc):
        self._cleanup()
        return False

    def _cleanup(self):
        if self.proc is not None:
            self.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for fd in self._fds + ([self._info_r] if self._info_r is not None else []):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds, self._info_r = [], None
        if self.uid is not None and self.is_root:
            kill_uid(self.uid)
        for link in self.symlinks:
            try:
                if os.path.islink(link) and os.readlink(link).startswith(self.instance + "/"):
                    os.unlink(link)
            except OSError:
                pass
        if self.owner is not None and os.path.isdir(self.workdir):
            sanitize_workdir(self.workdir, *(self.owner if self.is_root else (None, None)), log=self.log)
        if self.instance:
            shutil.rmtree(self.instance, ignore_errors=True)
        if self.lease:
            self.lease.release()


# ------------------------------------------------------------------ public functions
def run(argv, workdir, hide=(), limits=None, timeout=None, ro_paths=(), env=None, config=None,
        input=None, text=False):
    """Run ``argv`` in a sandbox whose only writable folder is ``workdir`` (its cwd inside).

    ``hide``: paths to make invisible; ``ro_paths``: more read-only paths (e.g. the course
    repository); ``env``: variables set inside (nothing else of this process's environment
    is passed but ``Config.pass_env``); ``timeout``: seconds, then everything inside is
    killed. Returns a :class:`RunResult` (stdout and stderr captured)."""
    config = dataclasses.replace(config or Config(),
                                 hide=list((config.hide if config else [])) + list(hide),
                                 ro_paths=list((config.ro_paths if config else [])) + list(ro_paths))
    if limits is not None:
        config.limits = limits
    start = time.monotonic()
    timed_out = False
    with Sandbox(workdir, config) as box:
        proc = box.popen(list(argv), env_extra=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            box.kill()
            out, err = proc.communicate()
        command = box.last_command
    return RunResult(proc.returncode, out, err, timed_out, time.monotonic() - start, command)


def probe(config=None):
    """``(ok, reason)``: whether a sandbox can be built on this machine, and why not."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap sandboxes need Linux (this is {sys.platform})"
    config = config or Config()
    try:
        bwrap = which(config.bwrap)
        for tool in ("prlimit",) + (("setpriv", "unshare", "mount") if os.geteuid() == 0 else ()):
            which(tool)
    except SandboxError as error:
        return False, str(error)
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
        if tuple(int(x) for x in version.split(".")[:2]) < (0, 8):
            return False, f"bubblewrap {version} is too old: 0.8 or newer is needed (--disable-userns)"
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return False, f"cannot run {bwrap} --version: {error}"
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return False, "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)"
    except OSError:
        return False, "this kernel has no user namespaces (/proc/sys/user/max_user_namespaces is missing)"
    for knob, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"),
                      ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1")):
        try:
            if Path(knob).read_text().strip() == bad:
                return False, f"unprivileged user namespaces are restricted ({knob} is {bad})"
        except OSError:
            pass
    try:
        with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as folder:
            os.chmod(folder, 0o755)
            result = run(["/bin/sh", "-c", "test \"$(id -u)\" != 0 && echo ok"], folder, config=config, timeout=30,
                         text=True)
    except (SandboxError, OSError, subprocess.SubprocessError) as error:
        return False, f"the sandbox cannot be set up: {error}"
    if result.returncode != 0 or result.stdout.strip() != "ok":
        return False, (f"a test sandbox failed (exit {result.returncode}): "
                       f"{(result.stderr or result.stdout).strip()[:500]}")
    return True, f"bubblewrap {version} works" + (" (dedicated uids from %d)" % config.uid_base
                                                  if os.geteuid() == 0 else " (as this user)")
