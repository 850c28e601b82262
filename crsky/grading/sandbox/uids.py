"""A dedicated uid per sandbox, leased with an ``flock``, and every process of a uid killed."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

from crsky.grading.sandbox.config import SandboxError


# ------------------------------------------------------------------ uid allocation
class UidLease:
    """A dedicated uid/gid for one sandbox, held with an flock on ``locks/uid-N.lock``."""

    def __init__(self, runtime_root, base, count):
        self.fd = None
        self.uid = None
        locks = Path(runtime_root) / "locks"
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(base, base + count):
            if uid_in_use_by_account(uid):
                continue
            fd = os.open(locks / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, uid
            kill_uid(uid)  # a leftover of a sandbox whose launcher was killed
            return
        raise SandboxError(f"all {count} sandbox uids from {base} are in use (raise uid_count)")

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def uid_in_use_by_account(uid):
    import pwd
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def processes_of(uid):
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


def kill_uid(uid, rounds=20):
    """SIGKILL every process of the (dedicated) uid. Root only."""
    for _ in range(rounds):
        pids = processes_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
