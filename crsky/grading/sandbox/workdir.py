"""After a sandbox: its working folder sanitized (links, devices, special bits removed) and
given back to its owner."""

from __future__ import annotations

import os
import stat


# ------------------------------------------------------------------ workdir ownership
def chown_tree(root, uid, gid, skip_multilinked=True):
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
