"""The hidden held-out seed: made once, kept where no student and no sandbox can read it.

Whoever knows the seed can simulate the hidden held-out maps, labels included, and fit a
model that memorises them; the seed is therefore a secret of the instructor, like a password:

    python -m crsky.grading.seed new              # writes ~/.config/crsky/heldout.seed (mode 0600)
    python -m crsky.grading.seed check [PATH]     # what the pipeline checks, without grading
    python -m crsky.grading SUBMISSIONS --seed-file ~/.config/crsky/heldout.seed

:func:`new_seed_file` draws 63 random bits from :mod:`secrets` and writes them into a new
file only its owner can read. :func:`read_seed_file`, which the pipeline calls, refuses
(:class:`SeedError`, with the fix) a file that is missing or holds anything but one
integer, a file group or others may read or write, a file inside the course checkout or
inside a folder a sandbox mounts, a seed below :data:`MIN_SEED` (found by trying them all)
and a seed written anywhere in the repository (a documentation example copied as it is).
"""

import argparse
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

from crsky.course import COURSE_ROOT

#: The one place the docs keep the seed file.
DEFAULT_SEED_FILE = Path("~/.config/crsky/heldout.seed")
SEED_BITS = 63  # random bits of a new seed; below 2**63 it fits every int64 the seed passes through
MIN_SEED = 10**6  # smaller seeds are found by trying every one of them
MAX_SCANNED_BYTES = 5 * 2**20  # without git: larger files are not searched (data, not text)
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "data", "out", "build", "dist"})


class SeedError(ValueError):
    """The seed file cannot be used as it is (the message says why and how to fix it)."""


def _command(path):
    return f"python -m crsky.grading.seed new {path}"


def _fix_new(path):
    return f"Make a new one outside the course checkout: {_command(path)}"


def _inside(path, folder):
    try:
        Path(path).relative_to(folder)
        return True
    except ValueError:
        return False


def _refuse_location(path, forbidden_folders):
    """Raise when ``path`` (as given or with links resolved) lies in the checkout or a folder
    in ``forbidden_folders``."""
    given = Path(os.path.abspath(path))
    real = Path(os.path.realpath(path))
    folders = [(Path(COURSE_ROOT), "the course checkout, which every grading sandbox mounts and "
                                   "which is easily committed or copied to students")]
    folders += [(Path(f), "a folder every grading sandbox mounts, so a student's code could read it")
                for f in forbidden_folders]
    for folder, why in folders:
        for candidate in {os.path.abspath(folder), os.path.realpath(folder)}:
            if _inside(given, candidate) or _inside(real, candidate):
                default = DEFAULT_SEED_FILE.expanduser()
                fix = (f"Move it out: mkdir -p -m 700 {default.parent} && mv {path} {default}, then pass "
                       f"--seed-file {default}" if real.is_file() else _fix_new(DEFAULT_SEED_FILE))
                raise SeedError(f"the seed file {path} is inside {candidate}: {why}. {fix}")


def mounted_folders(python=None):
    """Every folder a grading sandbox mounts on this machine (:mod:`crsky.grading.sandbox`):
    the Python installation of ``python`` (default: this interpreter; with the virtual
    environment and the installed package), the course checkout, the system folders
    (``/usr``, ``/bin``, ``/lib`` ...) and the entries of ``/etc`` it binds."""
    from crsky.grading import sandbox

    folders = [*sandbox.python_installation(python or sys.executable), str(COURSE_ROOT)]
    folders += [f"/{name}" for name in sandbox.SYSTEM_ENTRIES]
    folders += [f"/etc/{name}" for name in sandbox.ETC_ENTRIES]
    return folders


def new_seed_file(path=DEFAULT_SEED_FILE, forbidden_folders=()):
    """Write a new random seed (:data:`SEED_BITS` bits from :mod:`secrets`) into ``path``, a
    new file of mode 0600 (its folder is made with mode 0700 when missing). Refuses to
    overwrite a file, or to write into the course checkout or ``forbidden_folders``.
    Returns the file's path; the seed itself is never returned or printed."""
    path = Path(path).expanduser()
    _refuse_location(path, forbidden_folders)
    if os.path.lexists(path):
        raise SeedError(f"{path} exists already: a seed file is never overwritten (the grades of a class "
                        f"graded with it could not be reproduced). Keep it, or move it away first and run "
                        f"{_command(path)} again")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    seed = 0
    while seed < MIN_SEED:  # a chance of 1 in 10**13 per draw
        seed = secrets.randbits(SEED_BITS)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, f"{seed}\n".encode())
    finally:
        os.close(fd)
    return path


def read_seed_file(path, forbidden_folders=()) -> int:
    """The hidden seed in ``path``, after every check; raises :class:`SeedError` with the fix.

    ``forbidden_folders``: folders a grading sandbox mounts (the Python installation, the
    virtual environment, the package); the course checkout is always refused."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SeedError(f"there is no seed file at {path}. {_fix_new(path)}")
    if not path.is_file():
        raise SeedError(f"the seed file {path} is not a regular file. {_fix_new(DEFAULT_SEED_FILE)}")
    _refuse_location(path, forbidden_folders)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SeedError(f"the seed file {path} can be read or written by others than its owner (mode "
                        f"{mode:04o}); anyone with the seed can simulate the hidden maps. Fix: chmod 600 {path}, "
                        "and if others may have read it, make a new seed before the next class")
    try:
        text = path.read_text(encoding="ascii").strip()
    except (UnicodeDecodeError, OSError) as error:
        raise SeedError(f"the seed file {path} cannot be read as text ({type(error).__name__}). "
                        f"{_fix_new(DEFAULT_SEED_FILE)}") from None
    if not re.fullmatch(r"[0-9]+", text):
        found = ("nothing" if not text else "a negative number" if re.fullmatch(r"-[0-9]+", text)
                 else f"{len(text.split())} values" if len(text.split()) > 1 else "characters other than digits")
        raise SeedError(f"the seed file {path} must hold one non-negative integer and nothing else; it holds "
                        f"{found}. {_fix_new(DEFAULT_SEED_FILE)}")
    seed = int(text)
    if seed < MIN_SEED:
        raise SeedError(f"the seed in {path} is below {MIN_SEED:,}: trying every such seed finds it in minutes. "
                        f"{_fix_new(DEFAULT_SEED_FILE)}")
    where = files_containing(seed)
    if where:
        shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        raise SeedError(f"the seed in {path} is written in the repository ({shown}): students can read it there "
                        f"and simulate the hidden maps. Never use a seed from the docs or the tests. "
                        f"{_fix_new(DEFAULT_SEED_FILE)}")
    return seed


def files_containing(seed, root=COURSE_ROOT, git=True) -> list[str]:
    """The repository's text files (paths relative to ``root``) in which ``seed`` stands as a
    word of its own: through ``git grep -w --untracked`` when ``root`` is a git checkout (the
    files git tracks or would add; the pattern goes through stdin, never on a command line),
    otherwise (or with ``git=False``) every text file under ``root`` outside hidden, data and
    build folders."""
    root = Path(root)
    pattern = str(int(seed))
    if git and (root / ".git").exists():
        try:
            run = subprocess.run(["git", "-C", str(root), "grep", "--untracked", "-I", "-w", "-F", "-l", "-z",
                                  "-f", "-"],
                                 input=pattern + "\n", capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            run = None
        if run is not None and run.returncode in (0, 1):  # 1: no file holds it
            return sorted(name for name in run.stdout.split("\0") if name)
        # git missing, or refusing the checkout (another owner: "dubious ownership"): search the files.
    word = re.compile(rb"(?<![0-9A-Za-z_])" + pattern.encode() + rb"(?![0-9A-Za-z_])")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in _SKIPPED_FOLDERS
                         and not d.endswith(".egg-info")]
        for name in files:
            file = Path(folder) / name
            try:
                if not file.is_file() or file.is_symlink() or file.stat().st_size > MAX_SCANNED_BYTES:
                    continue
                data = file.read_bytes()
            except OSError:
                continue
            if b"\0" not in data[:8192] and word.search(data):
                found.append(str(file.relative_to(root)))
    return sorted(found)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crsky.grading.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("new", "write a new random seed into a new file of mode 0600"),
                            ("check", "check a seed file as the grading pipeline does")]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("path", nargs="?", default=str(DEFAULT_SEED_FILE),
                             help=f"the seed file (default {DEFAULT_SEED_FILE})")
    args = parser.parse_args(argv)
    forbidden = mounted_folders()
    try:
        if args.command == "new":
            path = new_seed_file(args.path, forbidden)
            print(f"wrote a new hidden seed ({SEED_BITS} random bits) to {path}, readable by you only (mode 0600).\n"
                  f"Grade with:  python -m crsky.grading SUBMISSIONS --seed-file {path}\n"
                  "Keep this file as it is for the whole term (the same seed, the same hidden maps), back it up "
                  "where only you can read it, and never print, commit or share it: anyone with the seed can "
                  "simulate the hidden maps and their labels.")
        else:
            read_seed_file(args.path, forbidden)
            print(f"{Path(args.path).expanduser()}: a usable hidden seed (random, private, outside the checkout "
                  "and the sandboxes, written nowhere in the repository)")
    except SeedError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
