"""What a sandbox is built from: its resource limits, its configuration, the errors it
raises and the fixed names inside it."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


GiB = 1024 ** 3
MiB = 1024 ** 2

#: Environment variables copied from the grader's environment into the sandbox (when set).
#: Everything else is dropped: the grader's secrets (the seed file's path, tokens) never reach it.
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
