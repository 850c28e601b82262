"""What a sandbox can reach on the host: the Python installation it mounts, the folders an
unprivileged uid can traverse."""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess

from crsky.grading.sandbox.config import SandboxError


# ------------------------------------------------------------------ small helpers
def is_within(path, folder):
    """``path`` equals ``folder`` or lies inside it (both absolute, normalised)."""
    path, folder = os.path.normpath(path), os.path.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def depth(path):
    return len([p for p in path.split("/") if p])


def traversable(folder_chain, uid, gid):
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


def ancestors(path, start="/"):
    """Folders from ``start`` (inclusive) down to the parent of ``path``."""
    out, current = [], os.path.dirname(path)
    while is_within(current, start):
        out.append(current)
        if current == start or current == "/":
            break
        current = os.path.dirname(current)
    return list(reversed(out))


def memfd(name, data):
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def which(name):
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
    return minimal_roots(p for p in paths if not is_within(p, "/usr"))


def minimal_roots(paths):
    """Drop paths that lie inside another one of the list."""
    roots = []
    for path in sorted({os.path.normpath(p) for p in paths}, key=lambda p: (depth(p), p)):
        if not any(is_within(path, root) for root in roots):
            roots.append(path)
    return roots
