"""A bubblewrap sandbox for students' notebook kernels and for trusted scoring processes.

Students' notebooks are hostile code that the grader runs. This module runs such code
(an ipykernel started by nbgrader/nbclient, or any command) inside ``bwrap``
(bubblewrap, Debian package ``bubblewrap`` >= 0.8) with:

* an **unprivileged host uid**. When the grader is root, every concurrently running
  sandbox gets its own numeric uid/gid (``uid_base`` .. ``uid_base + uid_count - 1``,
  61000.. by default), allocated with an ``flock``-ed lock file so that parallel sandboxes
  on one machine never share a uid; the privileges are dropped with ``setpriv`` *before*
  ``bwrap`` runs, so bwrap creates its user namespace as that uid (the namespace maps the
  sandbox uid to host uid 61000+n only; uid 0 is not mapped and the namespace is not
  owned by root). ``RLIMIT_NPROC`` therefore binds. When the grader is not root, bwrap
  runs as the grader's own user (then ``RLIMIT_NPROC`` counts the grader's processes too).
* its own user, mount, PID, network, IPC, UTS (and, where possible, cgroup) namespaces,
  ``--die-with-parent``, ``--new-session``, no nested user namespaces
  (``--disable-userns``), no capabilities, ``no_new_privs``.
* a file system built from nothing (a tmpfs root): the system (``/usr``, the merged-usr
  symlinks, a short list of ``/etc`` files with a synthetic ``passwd``/``group``), the
  Python installation and virtual environment and any ``ro_paths`` (the course repository)
  **read-only**; private tmpfs ``HOME`` (with IPython, Jupyter, Matplotlib and
  ``CRSKY_CACHE`` folders inside), ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (size-capped);
  the working folder (the notebook's folder) **read-write**; nothing else. Paths given in
  ``hide`` are made invisible even when they lie inside a read-only folder (a tmpfs over a
  folder, ``/dev/null`` over a file); a path that cannot be hidden is refused.
* sources the sandbox uid cannot reach on the host (a Python installed under ``/root``,
  mode 0700; a working folder below a 0700 temporary folder) are first bound by root into a
  per-sandbox staging folder inside a private mount namespace (``unshare --mount`` +
  ``mount --rbind``), because bwrap resolves every source path as the unprivileged uid.
* resource limits (``prlimit``): processes/threads, address space, file size, open files,
  core dumps, optionally CPU seconds; tmpfs sizes.
* a minimal, clean environment: nothing of the grader's environment reaches the sandbox
  except the names in ``pass_env`` (``NBGRADER_EXECUTION`` ...); the bwrap process itself is
  started with that clean environment, so ``/proc/1/environ`` shows nothing either.

Kernels: the kernel has no network, so it must talk to nbgrader/nbclient over Unix sockets:
``KernelManager.transport = "ipc"`` and ``KernelManager.ip = "/abs/path/kernel"`` (an
absolute path; the folder should belong to one grading process). The launcher never
exposes that folder: it mounts a private, per-kernel socket folder at the same path inside
the sandbox and puts symbolic links ``<ip>-<port>`` -> private socket on the host, so the
client connects through them. The connection file is copied into the sandbox read-only.
:func:`write_kernelspec` writes a kernelspec whose ``argv`` is
``python -m <this module> kernel --config <dir>/sandbox.json {connection_file}``.

Other processes: :func:`run` runs any command in the same kind of sandbox (no network,
read-only system, writable only its working folder), e.g. a trusted scoring process.

After a sandbox ends, its working folder is *sanitized* before the grader touches it again:
symbolic links, FIFOs, sockets and device files created by the sandboxed code are removed
(the root grader would otherwise follow a link planted by a student, e.g. when nbgrader
writes the graded notebook), set-uid/set-gid/sticky and world-write bits are cleared, and
the ownership is given back to the folder's original owner.

Command line::

    python -m crsky.grading.sandbox probe                       # can a sandbox be built here? (exit 0/1)
    python -m crsky.grading.sandbox run [--workdir W] [--hide P ...] [--ro P ...] -- CMD ...
    python -m crsky.grading.sandbox kernel --config CFG CONNECTION_FILE     # used by the kernelspec
    python -m crsky.grading.sandbox write-kernelspec DATA_DIR [--name N] [--ro P ...] [--hide P ...]

Only the standard library is used. grading/README.md says what is isolated and what is
not; ``python -m bench.sandbox`` measures the overhead.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import functools
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

__all__ = [
    "Limits", "Config", "Sandbox", "SandboxError", "RunResult",
    "probe", "run", "write_kernelspec", "sanitize_workdir", "main",
]

GiB = 1024 ** 3
MiB = 1024 ** 2

#: Environment variables copied from the grader's environment into the sandbox (when set).
#: Everything else is dropped: the grader's secrets (``CRSKY_GRADING_SEED``...) never reach it.
DEFAULT_PASS_ENV = (
    "NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
    "KERAS_BACKEND", "PYTHONWARNINGS", "OMP_NUM_THREADS", "MPLBACKEND", "TZ",
    "PYDEVD_DISABLE_FILE_VALIDATION",
)

#: Entries of /etc bound read-only (when they exist). passwd and group are synthetic.
ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "alternatives",
    "nsswitch.conf", "hosts", "host.conf", "gai.conf", "protocols", "services", "networks",
    "mime.types", "os-release", "fonts", "ssl", "ca-certificates", "locale.alias",
    "debian_version", "magic", "magic.mime", "matplotlibrc", "python3", "python3.11",
)
#: Top-level system entries: bound read-only when they are folders, re-created when symlinks
#: (merged /usr: /bin -> usr/bin ...).
SYSTEM_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: Folders that can never be a sandbox's writable working folder (or hold one).
FORBIDDEN_WORKDIRS = ("/proc", "/sys", "/dev", "/usr", "/etc", "/boot", "/bin", "/sbin", "/lib", "/lib64")

SANDBOX_USER = "student"
SANDBOX_HOME = "/home/" + SANDBOX_USER
INNER_CONNECTION_FILE = "/run/crsky/connection.json"


class SandboxError(RuntimeError):
    """The sandbox cannot be built as asked (the message says why)."""


# ------------------------------------------------------------------ configuration
@dataclasses.dataclass
class Limits:
    """Resource limits of a sandbox (``None``: no limit). Sizes in bytes."""

    nproc: int | None = 256                 # processes AND threads of the sandbox's uid
    address_space: int | None = 8 * GiB     # RLIMIT_AS, per process (virtual memory)
    file_size: int | None = 2 * GiB         # RLIMIT_FSIZE: largest file it can write
    open_files: int | None = 1024           # RLIMIT_NOFILE
    core: int | None = 0                    # no core dumps
    cpu_seconds: int | None = None          # RLIMIT_CPU per process
    tmpfs_size: int = 1 * GiB               # each of HOME, /tmp, /var/tmp, /dev/shm (RAM!)
    nice: int = 0                           # scheduling priority increment (``nice -n``)

    def prlimit_args(self):
        """Options for util-linux ``prlimit`` (soft = hard limit)."""
        names = {"nproc": "--nproc", "address_space": "--as", "file_size": "--fsize",
                 "open_files": "--nofile", "core": "--core", "cpu_seconds": "--cpu"}
        return [f"{option}={int(getattr(self, field))}:{int(getattr(self, field))}"
                for field, option in names.items() if getattr(self, field) is not None]


@dataclasses.dataclass
class Config:
    """What a sandbox looks like. JSON-serialisable (the kernelspec keeps one next to kernel.json)."""

    python: str = sys.executable            # the kernel's Python (for kernels only)
    ro_paths: list = dataclasses.field(default_factory=list)   # extra read-only folders/files
    hide: list = dataclasses.field(default_factory=list)       # paths that must be invisible
    limits: Limits = dataclasses.field(default_factory=Limits)
    env: dict = dataclasses.field(default_factory=dict)        # fixed variables inside
    pass_env: list = dataclasses.field(default_factory=lambda: list(DEFAULT_PASS_ENV))
    uid_base: int = 61000                   # root only: first dedicated uid/gid
    uid_count: int = 64                     # root only: how many sandboxes may run at once
    runtime_root: str | None = None         # default /run/crsky-sandbox (root) or a private temp folder
    hide_workdir_siblings: bool = True      # see Sandbox._plan
    python_paths: list | None = None        # the Python installation (computed when None)
    bwrap: str = "bwrap"                    # the bubblewrap executable (name on PATH or path)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["limits"] = Limits(**data.get("limits", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path):
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns."""

    returncode: int
    stdout: bytes | str
    stderr: bytes | str
    timed_out: bool
    seconds: float
    command: list


# ------------------------------------------------------------------ small helpers
def _is_within(path, folder):
    """``path`` equals ``folder`` or lies inside it (both absolute, normalised)."""
    path, folder = os.path.normpath(path), os.path.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _depth(path):
    return len([p for p in path.split("/") if p])


def _traversable(folder_chain, uid, gid):
    """Can ``uid``/``gid`` (no supplementary groups) traverse every folder of ``folder_chain``?
    Plain permission bits only (ACLs are not read)."""
    if uid == 0:
        return True
    for folder in folder_chain:
        try:
            st = os.stat(folder)
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _ancestors(path, start="/"):
    """Folders from ``start`` (inclusive) down to the parent of ``path``."""
    out, current = [], os.path.dirname(path)
    while _is_within(current, start):
        out.append(current)
        if current == start or current == "/":
            break
        current = os.path.dirname(current)
    return list(reversed(out))


def _memfd(name, data):
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _which(name):
    found = shutil.which(name) or (None if "/" in name else
                                   shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin"))
    if not found:
        raise SandboxError(f"'{name}' is not installed (Debian: apt-get install "
                           f"{'bubblewrap' if 'bwrap' in name else 'util-linux'})")
    return found


@functools.lru_cache(maxsize=8)
def python_installation(python):
    """Folders a Python interpreter needs: its prefixes and ``sys.path`` folders (real paths,
    outside ``/usr``, nested ones dropped)."""
    code = ("import sys, json; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, "
            "sys.exec_prefix, sys.base_exec_prefix] + sys.path))")
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout
    entries = json.loads(out)
    paths = [os.path.dirname(os.path.realpath(python)), os.path.dirname(os.path.abspath(python))]
    for entry in entries:
        if not entry:
            continue
        for candidate in {os.path.abspath(entry), os.path.realpath(entry)}:
            if os.path.isfile(candidate):        # python311.zip, the executable
                candidate = os.path.dirname(candidate)
            if os.path.isdir(candidate):
                paths.append(candidate)
    return _minimal_roots(p for p in paths if not _is_within(p, "/usr"))


def _minimal_roots(paths):
    """Drop paths that lie inside another one of the list."""
    roots = []
    for path in sorted({os.path.normpath(p) for p in paths}, key=lambda p: (_depth(p), p)):
        if not any(_is_within(path, root) for root in roots):
            roots.append(path)
    return roots


# ------------------------------------------------------------------ uid allocation
class _UidLease:
    """A dedicated uid/gid for one sandbox, held with an flock on ``locks/uid-N.lock``."""

    def __init__(self, runtime_root, base, count):
        self.fd = None
        self.uid = None
        locks = Path(runtime_root) / "locks"
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(base, base + count):
            if _uid_in_use_by_account(uid):
                continue
            fd = os.open(locks / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, uid
            _kill_uid(uid)  # a leftover of a sandbox whose launcher was killed
            return
        raise SandboxError(f"all {count} sandbox uids from {base} are in use (raise uid_count)")

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _uid_in_use_by_account(uid):
    import pwd
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _processes_of(uid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                for line in handle:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break  # a zombie (reaped by its parent or init soon): it runs nothing
                    if line.startswith("Uid:"):
                        if uid in {int(x) for x in line.split()[1:]}:
                            pids.append(int(entry))
                        break
        except OSError:
            pass
    return pids


def _kill_uid(uid, rounds=20):
    """SIGKILL every process of the (dedicated) uid. Root only."""
    for _ in range(rounds):
        pids = _processes_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


# ------------------------------------------------------------------ workdir ownership
def _chown_tree(root, uid, gid, skip_multilinked=True):
    """lchown everything below ``root`` (same file system only; hard-linked files skipped:
    giving them away would give away their other names too)."""
    root_dev = os.lstat(root).st_dev
    os.lchown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if st.st_dev != root_dev:
                continue
            if skip_multilinked and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                continue
            os.lchown(path, uid, gid)
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(folder, d)).st_dev == root_dev]


def sanitize_workdir(root, uid=None, gid=None, log=None):
    """Make a folder that sandboxed code could write safe for the (root) grader again.

    Removes symbolic links, FIFOs, sockets and device files; clears set-uid, set-gid,
    sticky and world-write bits; with ``uid``/``gid``, gives every file back to that owner.
    Never follows links. Returns the list of removed paths."""
    removed = []
    root = os.path.abspath(root)
    root_dev = os.lstat(root).st_dev
    for folder, dirs, files in os.walk(root, topdown=True):
        keep = []
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if st.st_dev != root_dev:
                continue  # a mount point: never descend into another file system
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                os.unlink(path)
                removed.append(path)
                continue
            if uid is not None and not (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
                os.lchown(path, uid, gid)
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o7002:
                os.chmod(path, mode & ~0o7002, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                keep.append(name)
        dirs[:] = [d for d in dirs if d in keep]
    if uid is not None:
        os.lchown(root, uid, gid)
    mode = stat.S_IMODE(os.lstat(root).st_mode)
    if mode & 0o7002:
        os.chmod(root, mode & ~0o7002)
    if removed and log:
        log(f"sandbox: removed {len(removed)} link(s)/special file(s) from {root}: "
            + ", ".join(os.path.relpath(p, root) for p in removed[:10]))
    return removed


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
                self.lease = _UidLease(root, self.config.uid_base, self.config.uid_count)
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
                _chown_tree(self.workdir, self.uid, self.gid)
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
        if _depth(w) < 2 or any(_is_within(w, f) for f in FORBIDDEN_WORKDIRS):
            raise SandboxError(f"refusing {w} as a sandbox's writable working folder")
        protected = list(self.config.ro_paths) + self._python_paths()
        for path in protected:
            if _is_within(os.path.realpath(path), w):
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
        if _depth(folder) < 2 or folder in ("/var/tmp", "/dev/shm") or _is_within(self.workdir, folder):
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
        binds_ro = _minimal_roots([os.path.realpath(p) for p in self._python_paths() + list(self.config.ro_paths)
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
            covering = [src for src, dest in trees if src != self.workdir and _is_within(self.workdir, src)]
            if covering:
                deepest = max(covering, key=_depth)
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
        ops.sort(key=lambda op: (_depth(op[0]), op[1]))
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
                    d != dest and _is_within(dest, d)
                    and not any(_is_within(b, d) and b != d and _is_within(dest, b) for b in binds)
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
            if not _is_within(real, src):
                continue
            inside = os.path.normpath(os.path.join(dest, os.path.relpath(real, src)))
            if not _traversable(_ancestors(real, src), self.uid, self.gid):
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
                fd = _memfd("sandbox-data", arg)
                self._fds.append(fd)
                args += ["--perms", "0444", "--ro-bind-data", str(fd), dest]
        # the tmpfs root itself read-only (it has no size limit); mounts on it keep their modes
        for dest in sorted(remount, key=_depth, reverse=True):
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
            if src in staged or _traversable(_ancestors(src), self.uid, self.gid):
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
        args_fd = _memfd("bwrap-args", b"\0".join(a.encode() for a in args) + b"\0")
        self._fds += [args_fd, info_w]
        cmd = [_which(self.config.bwrap), "--args", str(args_fd), "--", *argv]
        if self.is_root:
            cmd = [_which("setpriv"), f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *cmd]
        cmd = [_which("prlimit"), *self.config.limits.prlimit_args(), "--", *cmd]
        if self.config.limits.nice:
            cmd = [_which("nice"), "-n", str(int(self.config.limits.nice)), *cmd]
        if self._stage:
            script = "set -e; " + "; ".join(
                f"{shlex.quote(_which('mount'))} -n --rbind {shlex.quote(src)} {shlex.quote(dst)}"
                for src, dst in self._stage) + '; exec "$@"'
            cmd = [_which("unshare"), "--mount", "--propagation", "private", "--",
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
            _kill_uid(self.uid)
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
        bwrap = _which(config.bwrap)
        for tool in ("prlimit",) + (("setpriv", "unshare", "mount") if os.geteuid() == 0 else ()):
            _which(tool)
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


def _module_name():
    name = __spec__.name if __spec__ is not None else __name__
    return "sandbox" if name == "__main__" else name


def write_kernelspec(data_dir, name="crsky-sandbox", config=None, display_name="Python 3 (sandboxed)",
                     launcher_python=None):
    """Write ``<data_dir>/kernels/<name>/{kernel.json,sandbox.json}``; returns the folder.

    ``data_dir`` is what ``JUPYTER_DATA_DIR`` points to for nbgrader/nbclient. The kernel is
    ``config.python``; the launcher runs as the grader with ``launcher_python`` (default
    this interpreter), and must be able to import this module."""
    config = dataclasses.replace(config or Config())
    if config.python_paths is None:
        config.python_paths = python_installation(config.python)
    folder = Path(data_dir) / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sandbox.json").write_text(config.to_json())
    module = _module_name()
    spec = {
        "argv": [launcher_python or sys.executable, "-m", module, "kernel", "--config",
                 str(folder / "sandbox.json"), "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False, "sandbox": "bubblewrap"},
    }
    if "." not in module:
        # standalone module (not inside a package): let the launcher find it
        spec["env"] = {"PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}
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


if __name__ == "__main__":
    sys.exit(main())
