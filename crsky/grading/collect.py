"""Collect a class's submissions into a staging folder without trusting anything in them.

The submissions folder holds one entry per student: a folder ``<student>/`` or a zip
``<student>.zip``, each with ``<assignment>/<assignment>.ipynb`` and the files beside it
(``03_training/dgcnn.keras``). One top folder around the assignment folders (``<student>/``,
``Archive/``, anything) is unwrapped, in a zip and in a folder. Every entry is hostile
input, so :func:`collect`

- never follows a symbolic link and never opens a FIFO, socket or device: a submission
  holding one where collect looks (the entry itself, its top level, the unwrapped folder,
  anything below an assignment folder, any zip member) is rejected; folders that are not
  assignments are reported as ignored and never entered;
- copies regular files only, into ``staging/<student>/<assignment>/``, as files 0644 and
  folders 0755 owned by the grader, counting the bytes it writes: a file over its limit is
  left out, a submission whose bytes exceed ``Limits.submission_bytes`` is rejected as it
  goes (a zip bomb stops after that many bytes whatever its headers say);
- rejects a zip with an unsafe member name (``../``, absolute, a drive letter, a
  backslash), a link or special-file member, an encrypted member, a name given twice, or
  more than ``Limits.zip_members`` members (a central directory too large for that many is
  refused before zipfile parses it);
- grades nobody whose id is ambiguous: an id is ``[A-Za-z0-9_.-]+`` not starting with
  '.'; a folder and a zip for one student, two ids that differ only by case, or a zip
  wrapped in a folder named after another student of the batch reject every submission
  involved (which one is meant is for the instructor to decide; merging them is never
  right, and on a case-insensitive file system the two would silently become one);
- skips editor and OS clutter silently (:data:`JUNK`, AppleDouble ``._*`` files) and
  reports what else it leaves out (hidden files, folders that are not assignments,
  extra notebooks);
- stages an assignment only with a notebook that nbformat reads and validates as v4.

Problems go to :attr:`Submission.problems`, per assignment or ``"*"`` for the whole
submission; nothing is raised for a bad submission and the batch always goes on.

:func:`checksum_tree` and :func:`compare_checksums` let the pipeline prove afterwards that
no original file (folder, zip, link) changed while the class was graded.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

from crsky import limits as _limits
from crsky.limits import size_text as _size

# Not starting with "-" (nbgrader's command line would read it as an option) or "." (hidden, "..").
STUDENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
# Skipped silently wherever they appear: editor, Python and macOS clutter.
JUNK = frozenset({".ipynb_checkpoints", "__pycache__", ".DS_Store", "__MACOSX"})
MODEL_SUFFIXES = (".keras", ".h5")
MAX_DEPTH = 8  # folders below an assignment folder
_CHUNK = 1 << 16
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks
_OPEN_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


@dataclasses.dataclass(frozen=True)
class Limits:
    """Sizes in bytes and counts; the defaults (``crsky.limits``) leave room for an executed notebook with
    figures (the course's are under 20 KB unexecuted) and the trained model (220 KB for
    the textbook model), and stop what no honest submission needs."""

    notebook_bytes: int = _limits.NOTEBOOK_BYTES
    model_bytes: int = _limits.MODEL_BYTES  # a ``.keras`` or ``.h5`` file
    other_file_bytes: int = _limits.OTHER_FILE_BYTES
    submission_bytes: int = _limits.SUBMISSION_BYTES  # everything staged for one student, counted as written
    files: int = _limits.SUBMISSION_FILES  # files staged for one student (and, apart, folders below the assignment folders)
    zip_members: int = _limits.ZIP_MEMBERS  # members of one zip, folders and macOS clutter included


@dataclasses.dataclass
class Submission:
    student: str
    folder: Path  # staged copy: folder/<assignment>/<files>; exists only if something was staged
    assignments: list[str]  # assignments with a notebook present in the staged copy
    problems: dict[str, list[str]]  # assignment (or "*" for the whole submission) -> messages


class _Rejected(Exception):
    """The whole submission is not graded; the message says why."""


@dataclasses.dataclass
class _Entry:
    """One entry of the submissions folder and what scanning it found."""

    name: str
    kind: str  # "folder" | "zip" | "bad"
    student: str
    problems: dict = dataclasses.field(default_factory=dict)
    rejected: list = dataclasses.field(default_factory=list)
    st: os.stat_result | None = None  # the entry's lstat when it was scanned
    wrapper: str | None = None  # the top folder unwrapped
    seen: set = dataclasses.field(default_factory=set)  # assignment folders present
    files: list = dataclasses.field(default_factory=list)  # (parts, kind, limit, source) to copy

    def report(self, where, message):
        self.problems.setdefault(where, []).append(message)

    def describe(self):
        return f"{self.name}/" if self.kind == "folder" else self.name


# ------------------------------------------------------------------------- collect
def collect(submissions: Path, staging: Path, assignments: Sequence[str],
            limits: Limits = Limits()) -> list[Submission]:
    """Stage every student's submission; one :class:`Submission` per student id seen, sorted.

    Raises ``OSError`` only when ``submissions`` cannot be read as a folder or when
    ``staging`` exists and is not an empty folder, and ``ValueError`` when one of the two
    lies inside the other. ``submissions`` itself may be a link (the instructor's choice);
    nothing below it is ever followed.
    """
    submissions, staging, assignments = Path(submissions), Path(staging), list(assignments)
    subs_fd = os.open(submissions, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _prepare_staging(submissions, staging)
        entries = [_scan_entry(subs_fd, name, st, assignments, limits) for name, st in _list(subs_fd)]
        entries = [e for e in entries if e is not None]
        _reject_ambiguous_ids(entries)
        by_student = {}
        for entry in entries:
            by_student.setdefault(entry.student, []).append(entry)
        return [_stage_safely(subs_fd, staging, student, by_student[student], assignments, limits)
                for student in sorted(by_student)]
    finally:
        os.close(subs_fd)


def _prepare_staging(submissions, staging):
    if staging.is_symlink() or (staging.exists() and not staging.is_dir()):
        raise NotADirectoryError(f"the staging folder {staging} is not a folder")
    real_subs, real_staging = submissions.resolve(), staging.resolve()
    if real_staging == real_subs or real_subs in real_staging.parents or real_staging in real_subs.parents:
        raise ValueError(f"the staging folder {staging} and the submissions folder {submissions} must not "
                         "lie inside one another")
    if staging.exists() and any(staging.iterdir()):
        raise FileExistsError(f"the staging folder {staging} is not empty; give an empty or new one")
    staging.mkdir(parents=True, exist_ok=True)
    staging.chmod(0o755)


def _list(dir_fd):
    """(name, lstat) of a folder's entries, sorted by name, never following links."""
    with os.scandir(dir_fd) as it:
        items = [(e.name, e.stat(follow_symlinks=False)) for e in it]
    return sorted(items, key=lambda item: item[0])


def _kind(mode):
    for test, word in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"), (stat.S_ISLNK, "symbolic link"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return word
    return "special file"


def _printable(name):
    """A name as it can go into a report: control characters and undecodable bytes escaped."""
    return name if name.isprintable() else ascii(name)[1:-1]


def _scan_entry(subs_fd, name, st, assignments, limits):
    if name in JUNK or name.startswith("._"):
        return None
    mode = st.st_mode
    is_zip = name.lower().endswith(".zip") and len(name) > 4 and not stat.S_ISDIR(mode)
    entry = _Entry(name, "folder" if stat.S_ISDIR(mode) else "zip" if stat.S_ISREG(mode) and is_zip else "bad",
                   _printable(name[:-4] if is_zip else name), st=st)
    if entry.kind == "bad":
        what = _kind(mode)
        if stat.S_ISLNK(mode):
            what += f" (to {_printable(os.readlink(name, dir_fd=subs_fd))}), which is never followed"
        entry.rejected.append(f"expected a folder {entry.student}/ or a zip {entry.student}.zip; "
                              f"{_printable(name)} is a {what}: nothing is graded")
    elif not STUDENT_ID.match(entry.student):
        entry.rejected.append(f"{entry.student!r} is not a student id (letters, digits, '_', '.' and '-' only, "
                              "not starting with '.' or '-'): nothing is graded")
    else:
        try:
            (_scan_zip if entry.kind == "zip" else _scan_folder)(subs_fd, entry, st, assignments, limits)
        except _Rejected as rejected:
            entry.rejected.append(str(rejected))
        except OSError as error:  # unreadable, or changed while being read
            entry.rejected.append(f"{entry.describe()} cannot be read ({error.strerror or error}): nothing is graded")
        except Exception as error:  # not foreseen: this student is not graded, the batch goes on
            entry.rejected.append(f"{entry.describe()} could not be collected ({type(error).__name__}: {error}): "
                                  "nothing is graded")
    return entry


def _reject_ambiguous_ids(entries):
    """Two entries for one id (a folder and a zip), ids equal but for case, a zip wrapped in
    a folder named after another submitter: every submission involved is rejected, each
    told why. Which one the student meant is for the instructor to decide; grading one of
    them could grade the wrong one, and merging them is never right."""
    valid = [e for e in entries if STUDENT_ID.match(e.student)]
    by_id, by_lower = {}, {}
    for e in valid:
        by_id.setdefault(e.student, []).append(e)
        by_lower.setdefault(e.student.lower(), set()).add(e.student)
    for student, group in by_id.items():
        if len(group) > 1:
            names = " and ".join(sorted(e.describe() for e in group))
            for e in group:
                e.rejected.append(f"{student} submitted more than once ({names}): none is graded; "
                                  "keep one and grade again")
    for ids in by_lower.values():
        for student in ids if len(ids) > 1 else ():
            others = ", ".join(sorted(ids - {student}))
            for e in by_id[student]:
                e.rejected.append(f"the student id {student} differs only by case from {others}: none of them is "
                                  "graded (on a case-insensitive file system they are one folder); rename one")
    for e in valid:
        if e.wrapper and e.wrapper.lower() != e.student.lower() and e.wrapper.lower() in by_lower:
            owners = sorted(by_lower[e.wrapper.lower()])
            e.rejected.append(f"{e.describe()} holds its files in a folder {e.wrapper}/, named after "
                              f"{', '.join(owners)}, who also submitted: neither is graded")
            for owner in owners:
                for other in by_id[owner]:
                    other.rejected.append(f"{e.describe()} (another submission) holds its files in a folder "
                                          f"{e.wrapper}/ named after {owner}: neither is graded")


# ------------------------------------------------------------------- scanning
def _wrapper(tops, assignments):
    """The one top folder to unwrap: no assignment folder at the top and a single folder there.
    ``tops`` maps each top name to whether it is a folder."""
    if set(tops) & set(assignments) or len(tops) != 1:
        return None
    [(name, is_dir)] = tops.items()
    return name if is_dir else None


def _scan_folder(subs_fd, entry, st, assignments, limits):
    """Walk a folder submission (its top, the one wrapper folder, the assignment folders),
    never following a link; links and special files anywhere reject the submission."""
    fd = os.open(entry.name, _OPEN_DIR, dir_fd=subs_fd)
    try:
        _same_file(fd, st, entry.name)
        listing = _visible(entry, fd, ())
        entry.wrapper = _wrapper({n: stat.S_ISDIR(s.st_mode) for n, s in listing}, assignments)
        prefix = (entry.name,)
        if entry.wrapper:
            prefix += (entry.wrapper,)
            inner = os.open(entry.wrapper, _OPEN_DIR, dir_fd=fd)
            try:
                _same_file(inner, dict(listing)[entry.wrapper], entry.wrapper)
                listing = _visible(entry, inner, (entry.wrapper,))
            finally:
                os.close(inner)
    finally:
        os.close(fd)
    items, counter = [], {"files": 0, "folders": 0}  # items: (parts below the wrapper, is_dir, size, source)
    for name, s in listing:
        if name in assignments and stat.S_ISDIR(s.st_mode):
            entry.seen.add(name)
            _walk(subs_fd, prefix, (name,), s, entry, items, counter, limits)
        else:
            items.append(((name,), stat.S_ISDIR(s.st_mode), s.st_size, None))
    _select(entry, items, assignments, limits)


def _visible(entry, dir_fd, parts):
    """A folder's listing without clutter (silently) and hidden names (reported); a link or
    a special file rejects the submission."""
    kept = []
    for name, s in _list(dir_fd):
        if name in JUNK or name.startswith("._"):
            continue
        path = "/".join((*parts, _printable(name)))
        if not (stat.S_ISREG(s.st_mode) or stat.S_ISDIR(s.st_mode)):
            what = _kind(s.st_mode)
            if stat.S_ISLNK(s.st_mode):
                what += f" (to {_printable(os.readlink(name, dir_fd=dir_fd))})"
            raise _Rejected(f"{path} is a {what}: a submission may hold regular files and folders only, "
                            "and links are never followed; nothing of it is graded")
        if name.startswith("."):
            entry.report("*", f"ignored the hidden {'folder' if stat.S_ISDIR(s.st_mode) else 'file'} {path}")
            continue
        kept.append((name, s))
    return kept


def _walk(subs_fd, prefix, parts, st, entry, items, counter, limits):
    fd = _open_dir(subs_fd, (*prefix, *parts))
    try:
        _same_file(fd, st, "/".join(parts))
        listing = _visible(entry, fd, parts)
    finally:
        os.close(fd)
    for name, s in listing:
        kind = "folders" if stat.S_ISDIR(s.st_mode) else "files"
        counter[kind] += 1
        if counter[kind] > limits.files:
            raise _Rejected(f"more than {limits.files} {kind} in the assignment folders: nothing of this "
                            "submission is graded")
        child = (*parts, name)
        if not stat.S_ISDIR(s.st_mode):
            items.append((child, False, s.st_size, ((*prefix, *child), s.st_dev, s.st_ino)))
        elif len(child) - 1 > MAX_DEPTH:
            entry.report(parts[0], f"ignored {'/'.join(map(_printable, child))}/: folders may nest {MAX_DEPTH} "
                                   "deep at most")
        else:
            _walk(subs_fd, prefix, child, s, entry, items, counter, limits)


def _open_dir(dir_fd, parts):
    """A folder below ``dir_fd``, opened one name at a time, no link followed on the way."""
    fd = os.dup(dir_fd)
    try:
        for part in parts:
            inner = os.open(part, _OPEN_DIR, dir_fd=fd)
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise


def _same_file(fd, st, what):
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        raise _Rejected(f"{_printable(what)} changed while it was being collected: nothing of this submission "
                        "is graded")


@contextlib.contextmanager
def _zip(subs_fd, name, st, limits):
    """The zip ``name`` opened without following a link; unreadable zips reject the submission.

    zipfile reads the whole central directory into objects before anything can be counted
    (a 100 MiB zip can list a million empty members): a central directory larger than
    ``limits.zip_members`` members can need (1 KiB each) is refused before that."""
    fd = os.open(name, _OPEN_FILE, dir_fd=subs_fd)
    with os.fdopen(fd, "rb") as handle:
        _same_file(fd, st, name)
        directory = _central_directory_bytes(handle, st.st_size)
        if directory is not None and directory > limits.zip_members * 1024:
            raise _Rejected(f"{_printable(name)} lists its members in {_size(directory)}, more than "
                            f"{limits.zip_members} members need: nothing is graded")
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as error:  # BadZipFile, and whatever a crafted header makes zipfile raise
            raise _Rejected(f"{_printable(name)} is not a zip file that can be read ({type(error).__name__}: "
                            f"{error}): nothing is graded") from None
        with archive:
            yield archive


def _central_directory_bytes(handle, size):
    """The central directory's size that a zip's end record gives (as zipfile reads it), or
    None where there is no end record (zipfile then refuses the zip)."""
    tail_size = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    [directory] = struct.unpack("<I", tail[at + 12:at + 16])
    if directory == 0xFFFFFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":  # zip64
        [offset] = struct.unpack("<Q", tail[at - 12:at - 4])
        handle.seek(offset)
        record = handle.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            [directory] = struct.unpack("<Q", record[40:48])
    return directory


def _scan_zip(subs_fd, entry, st, assignments, limits):
    shown = _printable(entry.name)
    if st.st_size > limits.submission_bytes:
        raise _Rejected(f"{shown} is {_size(st.st_size)}; a submission may hold {_size(limits.submission_bytes)}: "
                        "nothing is graded")
    with _zip(subs_fd, entry.name, st, limits) as archive:
        infos = archive.infolist()
    if len(infos) > limits.zip_members:
        raise _Rejected(f"{shown} has {len(infos)} members; a zip may have {limits.zip_members}: nothing is graded")
    members, seen = [], {}
    for info in infos:
        name, mode = info.filename, info.external_attr >> 16
        member = _printable(name)
        if info.flag_bits & 0x41:
            raise _Rejected(f"{shown} is encrypted ({member}): send it without a password; nothing is graded")
        if name.startswith("/") or _DRIVE.match(name) or "\\" in name or ".." in name.split("/"):
            raise _Rejected(f"{shown} has a member named {member!r}, which points outside its folder (an absolute "
                            "path, a drive, '..' or a backslash): nothing of it is graded")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _Rejected(f"{shown} has a member {member} that is a {_kind(mode)}: a submission may hold regular "
                            "files and folders only; nothing of it is graded")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if not parts:
            continue
        is_dir = info.is_dir() or stat.S_ISDIR(mode)
        if parts in seen and not (is_dir and seen[parts]):
            raise _Rejected(f"{shown} holds {member} twice: nothing of it is graded")
        seen[parts] = is_dir
        members.append((parts, is_dir, info.file_size, info))
    for parts, *_ in members:
        for i in range(1, len(parts)):
            if seen.get(parts[:i]) is False:
                raise _Rejected(f"{shown} holds {_printable('/'.join(parts[:i]))} as a file and as a folder: "
                                "nothing of it is graded")
    items, hidden = [], set()
    for parts, is_dir, size, info in members:
        if any(p in JUNK or p.startswith("._") for p in parts):
            continue
        dot = next((i for i, p in enumerate(parts) if p.startswith(".")), None)
        if dot is None:
            items.append((parts, is_dir, size, info))
        else:
            hidden.add("/".join(parts[:dot + 1]) + ("/" if dot + 1 < len(parts) or is_dir else ""))
    for path in sorted(hidden):
        entry.report("*", f"ignored the hidden {'folder' if path.endswith('/') else 'file'} {_printable(path)}")
    tops = {}
    for parts, is_dir, _, _ in items:
        tops[parts[0]] = tops.get(parts[0], False) or is_dir or len(parts) > 1
    entry.wrapper = _wrapper(tops, assignments)
    if entry.wrapper:
        items = [(parts[1:], *rest) for parts, *rest in items if len(parts) > 1]
    entry.seen.update(parts[0] for parts, is_dir, *_ in items if parts[0] in assignments and (len(parts) > 1 or is_dir))
    # A folder member comes with the files in it; an empty folder is nothing to stage.
    items = [(parts, is_dir, *rest) for parts, is_dir, *rest in items if not is_dir or parts[0] not in assignments]
    _select(entry, items, assignments, limits)


def _select(entry, items, assignments, limits):
    """Keep the files in the course's assignment folders that are within their limits; report
    what is left out."""
    ignored = {}
    lower = {a.lower(): a for a in assignments}
    for parts, is_dir, size, source in items:
        top = parts[0]
        shown = "/".join(map(_printable, parts))
        if top not in assignments:
            hint = f" (expected {lower[top.lower()]}/: names are case-sensitive)" if top.lower() in lower else ""
            ignored.setdefault(_printable(top) + ("/" if is_dir or len(parts) > 1 else ""), hint)
            continue
        if len(parts) == 1:
            entry.report(top, f"expected a folder {top}/, got a file {top}: {top} is not graded")
            continue
        if len(parts) - 2 > MAX_DEPTH:
            entry.report(top, f"ignored {shown}: folders may nest {MAX_DEPTH} deep at most")
            continue
        if not all(map(_good_name, parts)):
            entry.report(top, f"ignored {shown}: a name holds control characters, is not UTF-8 or is too long")
            continue
        name = parts[-1]
        if parts == (top, f"{top}.ipynb"):
            kind, limit = "notebook", limits.notebook_bytes
        elif name.endswith(".ipynb"):
            entry.report(top, f"ignored {shown}: the notebook graded is {top}/{top}.ipynb")
            continue
        elif name.endswith(MODEL_SUFFIXES):
            kind, limit = "model", limits.model_bytes
        else:
            kind, limit = "file", limits.other_file_bytes
        if size > limit:
            entry.report(top, f"left out {shown}: it is {_size(size)}, and a {kind} may be {_size(limit)} at most")
            continue
        if len(entry.files) >= limits.files:
            raise _Rejected(f"more than {limits.files} files in the assignment folders: nothing of this "
                            "submission is graded")
        entry.files.append((parts, kind, limit, source))
    if ignored:
        listed = ", ".join(name + hint for name, hint in sorted(ignored.items()))
        entry.report("*", f"ignored what is not an assignment folder of this course ({', '.join(assignments)}): "
                          f"{listed}")


def _good_name(part):
    try:
        return not _CONTROL.search(part) and len(part.encode("utf-8")) <= 255
    except UnicodeEncodeError:  # a name whose bytes are not UTF-8
        return False


# -------------------------------------------------------------------- staging
def _stage_safely(subs_fd, staging, student, group, assignments, limits):
    try:
        return _stage_student(subs_fd, staging, student, group, assignments, limits)
    except Exception as error:  # not foreseen: this student is not graded, the batch goes on
        shutil.rmtree(staging / student, ignore_errors=True)
        problems = {"*": [f"could not be collected ({type(error).__name__}: {error}): nothing is graded"]}
        return Submission(student, staging / student, [], problems)


def _stage_student(subs_fd, staging, student, group, assignments, limits):
    submission = Submission(student, staging / student, [], {})
    for entry in group:
        for where, messages in entry.problems.items():
            submission.problems.setdefault(where, []).extend(messages)
        if entry.rejected:
            submission.problems.setdefault("*", []).extend(entry.rejected)
    if any(e.rejected for e in group):
        return submission
    [entry] = group
    try:
        _copy_files(subs_fd, entry, submission.folder, limits, submission)
    except _Rejected as rejected:
        shutil.rmtree(submission.folder, ignore_errors=True)
        submission.problems.setdefault("*", []).append(str(rejected))
        return submission
    for assignment in assignments:
        folder = submission.folder / assignment
        notebook = folder / f"{assignment}.ipynb"
        if notebook.is_file():
            error = _notebook_problem(notebook)
            problem = error and f"{assignment}/{assignment}.ipynb is not a valid notebook ({error}): " \
                                f"{assignment} is not graded"
        elif assignment in entry.seen:
            found = [_printable(p.name) for p in sorted(folder.glob("*"))] if folder.exists() else []
            problem = (f"expected {assignment}/{assignment}.ipynb; {assignment}/ holds "
                       f"{', '.join(found) if found else 'nothing that could be staged'}: {assignment} is not graded")
        else:
            continue
        if problem:
            submission.problems.setdefault(assignment, []).append(problem)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            submission.assignments.append(assignment)
    if submission.folder.exists() and not any(submission.folder.iterdir()):
        submission.folder.rmdir()
    if not entry.seen:
        submission.problems.setdefault("*", []).append(
            f"no assignment folder found (expected {', '.join(a + '/' for a in assignments)})")
    return submission


def _copy_files(subs_fd, entry, target, limits, submission):
    """Copy the planned files, counting the bytes written against each file's and the
    submission's limits: what a zip's headers say is never trusted for that."""
    _mkdir(target)
    with contextlib.ExitStack() as stack:
        archive = None
        if entry.kind == "zip":
            archive = stack.enter_context(_zip(subs_fd, entry.name, entry.st, limits))
        written = 0
        for parts, kind, limit, source in entry.files:
            destination = target.joinpath(*parts)
            _mkdir(destination.parent)
            shown = "/".join(parts)
            size = 0
            try:
                with (archive.open(source) if archive else _open_source(subs_fd, source, shown)) as reader, \
                        open(destination, "xb", opener=_create) as out:
                    while chunk := reader.read(_CHUNK):
                        size += len(chunk)
                        if size > limit:
                            break
                        written += len(chunk)
                        if written > limits.submission_bytes:
                            raise _Rejected(f"the submission holds more than {_size(limits.submission_bytes)} "
                                            f"(stopped at {shown}{' while extracting ' + entry.name if archive else ''}"
                                            "): nothing of it is graded")
                        out.write(chunk)
            except _Rejected:
                raise
            except Exception as error:  # a corrupt member: BadZipFile (CRC), zlib.error, EOFError, OSError
                raise _Rejected(f"{_printable(entry.describe())}: {shown} cannot be read ({type(error).__name__}: "
                                f"{error}): nothing of this submission is graded") from None
            if size > limit:
                destination.unlink()
                written -= size - len(chunk)
                submission.problems.setdefault(parts[0], []).append(
                    f"left out {shown}: it holds more than {_size(limit)}, the limit for a {kind}")


def _create(path, flags):
    fd = os.open(path, flags | os.O_NOFOLLOW, 0o644)
    os.fchmod(fd, 0o644)
    return fd


def _open_source(subs_fd, source, shown):
    """Open a planned file of a folder submission: no link followed on the way, the very
    regular file that was scanned, opened without blocking (a FIFO put there never hangs)."""
    parts, dev, ino = source
    fd = _open_dir(subs_fd, parts[:-1])
    try:
        file_fd = os.open(parts[-1], _OPEN_FILE, dir_fd=fd)
    finally:
        os.close(fd)
    st = os.fstat(file_fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (dev, ino):
        os.close(file_fd)
        raise _Rejected(f"{shown} changed while it was being collected: nothing of this submission is graded")
    return os.fdopen(file_fd, "rb")


def _mkdir(folder):
    if not folder.is_dir():
        _mkdir(folder.parent)
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)


def _notebook_problem(path):
    """None when nbformat reads ``path`` as a valid v4 notebook, else why not, in one line."""
    import nbformat

    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("nbformat") != 4:
            version = data.get("nbformat") if isinstance(data, dict) else type(data).__name__
            return f"nbformat {version!r}, expected 4"
        cells = data.get("cells")
        if isinstance(cells, list) and len(cells) > _limits.NOTEBOOK_CELLS:
            return (f"{len(cells):,} cells, more than the {_limits.NOTEBOOK_CELLS:,} a notebook may have "
                    "(delete the empty ones)")
        nbformat.validate(nbformat.reads(text, as_version=4))
    except Exception as error:  # not UTF-8, not JSON, nested too deep, not the schema
        first = (str(error).strip().splitlines() or [""])[0]
        return f"{type(error).__name__}: {first[:200]}"
    return None


# ------------------------------------------------------------------ checksums
def checksum_tree(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (relative path -> fingerprint), never following a link
    and never opening anything but regular files: a file's sha256 (a zip is a file: its
    members are covered by its bytes), ``"<folder>"``, ``"<symbolic link> -> target"``, or
    the kind of a special file."""
    result = {}
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _checksum_walk(root_fd, "", result)
    finally:
        os.close(root_fd)
    return result


def _checksum_walk(dir_fd, prefix, result):
    for name, st in _list(dir_fd):
        rel = prefix + name
        if stat.S_ISDIR(st.st_mode):
            result[rel] = "<folder>"
            try:
                fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
            except OSError as error:
                result[rel] = f"<folder, unreadable: {error.strerror}>"
                continue
            try:
                _checksum_walk(fd, rel + "/", result)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256()
            try:
                fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
                with os.fdopen(fd, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                result[rel] = digest.hexdigest()
            except OSError as error:
                result[rel] = f"<file, unreadable: {error.strerror}>"
        elif stat.S_ISLNK(st.st_mode):
            result[rel] = f"<symbolic link> -> {os.readlink(name, dir_fd=dir_fd)}"
        else:
            result[rel] = f"<{_kind(st.st_mode)}>"


def compare_checksums(before: dict, after: dict) -> list[str]:
    """What differs between two :func:`checksum_tree` results, one readable line each."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        shown = _printable(path)
        if new is None:
            lines.append(f"missing: {shown}")
        elif old is None:
            lines.append(f"new: {shown}")
        elif old.startswith("<") or new.startswith("<"):
            lines.append(f"changed: {shown} (was {_brief(old)}, now {_brief(new)})")
        else:
            lines.append(f"changed: {shown} (sha256 {old[:12]}... -> {new[:12]}...)")
    return lines


def _brief(fingerprint):
    return fingerprint if fingerprint.startswith("<") else f"a file with sha256 {fingerprint[:12]}..."
