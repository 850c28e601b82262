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
not; ``python -m bench.sandbox`` measures the overhead. The modules, one job each:

* :mod:`.config`: what a sandbox is built from (limits, the configuration, errors, constants);
* :mod:`.paths`: what the sandbox can reach on the host (the Python installation, traversal);
* :mod:`.uids`: a dedicated uid per sandbox (leased with ``flock``) and killing all it runs;
* :mod:`.workdir`: the working folder given back sanitized to its owner;
* :mod:`.box`: the sandbox itself (:class:`Sandbox`), :func:`run` and :func:`probe`;
* :mod:`.kernel`: the sandboxed Jupyter kernel (kernelspec and launcher);
* :mod:`.cli`: the command line (``python -m crsky.grading.sandbox``).
"""

from crsky.grading.sandbox.box import Sandbox, probe, run
from crsky.grading.sandbox.cli import main
from crsky.grading.sandbox.config import (DEFAULT_PASS_ENV, ETC_ENTRIES, SYSTEM_ENTRIES, Config, Limits, RunResult,
                                          SandboxError)
from crsky.grading.sandbox.kernel import write_kernelspec
from crsky.grading.sandbox.paths import python_installation
from crsky.grading.sandbox.workdir import sanitize_workdir

__all__ = [
    "Limits", "Config", "Sandbox", "SandboxError", "RunResult", "DEFAULT_PASS_ENV", "ETC_ENTRIES", "SYSTEM_ENTRIES",
    "probe", "run", "write_kernelspec", "sanitize_workdir", "python_installation", "main",
]
