"""crsky.grading.collect on real hostile submissions: folders, zips, symbolic links, FIFOs,
sockets, zip bombs and zip-slip names. Each bad submission is rejected or reported for its
student only, the rest of the class is staged, and no original file changes."""

import json
import os
import signal
import socket
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import nbformat
import pytest

from crsky.course import ASSIGNMENTS
from crsky.grading.collect import Limits, checksum_tree, collect, compare_checksums

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _never_hang():
    """A test that blocks (a FIFO opened for reading, say) fails after 60 s instead of hanging."""
    def expire(*_):
        raise TimeoutError("the test blocked for 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def notebook(text="1 + 1"):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(text))
    return nbformat.writes(nb).encode()


def write_tree(root, files):
    """``files``: relative path -> bytes."""
    for relative, data in files.items():
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return Path(root)


def write_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def raw_zip(path, members):
    """A zip written byte by byte, so that its headers say whatever a test needs: each member
    a dict with name, data (already compressed), method (0 stored, 8 deflate), crc, size
    (declared uncompressed size), and optionally flags and mode (Unix mode, as zip tools
    store it in the external attributes)."""
    body, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode()
        header = (20, m.get("flags", 0) | 0x800, m.get("method", 0), 0, 0x21, m["crc"], len(m["data"]), m["size"],
                  len(name), 0)
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, *header) + name + m["data"]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, *header, 0, 0, 0,
                               m.get("mode", 0o100644) << 16, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    Path(path).write_bytes(bytes(body + central + end))
    return path


def stored(name, data, **extra):
    return {"name": name, "data": data, "method": 0, "crc": zlib.crc32(data), "size": len(data), **extra}


def by_student(results):
    return {s.student: s for s in results}


def problems_text(submission):
    return " | ".join(m for messages in submission.problems.values() for m in messages)


def staged_files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "submissions").mkdir()
    return tmp_path / "submissions", tmp_path / "staging"


# ---------------------------------------------------------------- good input
def test_folders_and_zips_are_staged_as_plain_files(dirs):
    subs, staging = dirs
    model = os.urandom(3000)
    write_tree(subs / "alice", {
        "01_sky/01_sky.ipynb": notebook("sky"),
        "03_training/03_training.ipynb": notebook("train"),
        "03_training/dgcnn.keras": model,
        "03_training/extra/notes.txt": b"beside",
        "01_sky/.ipynb_checkpoints/01_sky-checkpoint.ipynb": b"junk",
        "01_sky/__pycache__/x.pyc": b"junk",
        "01_sky/.DS_Store": b"junk",
    })
    os.chmod(subs / "alice/03_training/dgcnn.keras", 0o600)
    os.chmod(subs / "alice/01_sky/01_sky.ipynb", 0o755)
    os.chmod(subs / "alice/03_training/extra", 0o700)
    # A zip wrapped in the student's folder, with macOS clutter around it.
    write_zip(subs / "bob.zip", {"bob/02_kernel/02_kernel.ipynb": notebook("kernel"),
                                 "bob/02_kernel/.DS_Store": b"junk",
                                 "__MACOSX/bob/02_kernel/._02_kernel.ipynb": b"junk",
                                 "bob/02_kernel/._02_kernel.ipynb": b"junk"})
    # A zip wrapped in a folder of another name, and one not wrapped at all.
    write_zip(subs / "carol.zip", {"Archive/04_graph/04_graph.ipynb": notebook("graph")})
    write_zip(subs / "dave.zip", {"01_sky/01_sky.ipynb": notebook("sky"), "01_sky/": b""})
    subs.joinpath(".DS_Store").write_bytes(b"junk")
    (subs / "__MACOSX").mkdir()

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert set(results) == {"alice", "bob", "carol", "dave"}
    assert all(not s.problems for s in results.values()), {k: s.problems for k, s in results.items()}
    assert results["alice"].assignments == ["01_sky", "03_training"]
    assert staged_files(staging / "alice") == ["01_sky/01_sky.ipynb", "03_training/03_training.ipynb",
                                               "03_training/dgcnn.keras", "03_training/extra/notes.txt"]
    assert (staging / "alice/03_training/dgcnn.keras").read_bytes() == model
    assert results["bob"].assignments == ["02_kernel"] and results["bob"].folder == staging / "bob"
    assert staged_files(staging / "bob") == ["02_kernel/02_kernel.ipynb"]
    assert results["carol"].assignments == ["04_graph"] and results["dave"].assignments == ["01_sky"]
    for path in staging.rglob("*"):
        mode = path.lstat().st_mode
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode)
        assert stat.S_IMODE(mode) == (0o755 if stat.S_ISDIR(mode) else 0o644), path
        assert path.lstat().st_uid == os.getuid()


# ------------------------------------------------------- links, special files
@pytest.mark.parametrize("make", [
    pytest.param(lambda s: os.symlink(s / "alice", s / "mallory"), id="entry-links-to-another-student"),
    pytest.param(lambda s: os.symlink("/etc/passwd", s / "mallory.zip"), id="zip-entry-links-outside"),
    pytest.param(lambda s: (write_tree(s / "mallory", {"01_sky/notes.txt": b"x"}),
                            os.symlink("/etc/passwd", s / "mallory/01_sky/01_sky.ipynb")),
                 id="notebook-links-to-passwd"),
    pytest.param(lambda s: (s.joinpath("mallory").mkdir(), os.symlink("../alice/01_sky", s / "mallory/01_sky")),
                 id="assignment-folder-links-to-alice"),
    pytest.param(lambda s: (write_tree(s / "mallory", {"02_kernel/02_kernel.ipynb": notebook()}),
                            os.symlink("..", s / "mallory/02_kernel/loop")), id="loop"),
    pytest.param(lambda s: (write_tree(s / "mallory", {"02_kernel/02_kernel.ipynb": notebook()}),
                            os.symlink("nowhere", s / "mallory/02_kernel/dgcnn.keras")), id="dangling"),
    pytest.param(lambda s: (write_tree(s / "mallory", {"02_kernel/02_kernel.ipynb": notebook()}),
                            os.symlink("/", s / "mallory/notes")), id="link-outside-the-assignment-folders"),
    pytest.param(lambda s: (write_tree(s / "mallory", {"w/02_kernel/02_kernel.ipynb": notebook()}),
                            os.symlink("/etc", s / "mallory/w/01_sky")), id="link-inside-the-unwrapped-folder"),
])
def test_symbolic_links_are_rejected_never_followed(dirs, make):
    subs, staging = dirs
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": notebook("alice's")})
    make(subs)
    before = checksum_tree(subs)

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    mallory = results["mallory"]
    assert mallory.assignments == [] and not (staging / "mallory").exists()
    assert "symbolic link" in problems_text(mallory) and "never followed" in problems_text(mallory)
    assert results["alice"].assignments == ["01_sky"]  # the rest of the class is graded
    assert not any(b"root:" in p.read_bytes() for p in staging.rglob("*") if p.is_file())
    assert compare_checksums(before, checksum_tree(subs)) == []


def test_fifos_sockets_and_devices_are_rejected_without_blocking(dirs, monkeypatch):
    subs, staging = dirs
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": notebook()})
    os.mkfifo(subs / "fifo_entry")
    os.mkfifo(subs / "fifo_entry2.zip")
    write_tree(subs / "fifo_inside", {"01_sky/notes.txt": b"x"})
    os.mkfifo(subs / "fifo_inside/01_sky/01_sky.ipynb")  # nobody ever writes: opening it would block
    write_tree(subs / "sock", {"02_kernel/02_kernel.ipynb": notebook()})
    monkeypatch.chdir(subs / "sock/02_kernel")  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("listening")
    expected = {"fifo_entry": "FIFO", "fifo_entry2": "FIFO", "fifo_inside": "FIFO", "sock": "socket"}
    try:
        os.mknod(subs / "device", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
        expected["device"] = "character device"
    except PermissionError:
        pass  # no CAP_MKNOD here: the other kinds are still checked

    start = time.perf_counter()
    results = by_student(collect(subs, staging, ASSIGNMENTS))
    server.close()

    assert time.perf_counter() - start < 10
    assert results["alice"].assignments == ["01_sky"]
    for student, kind in expected.items():
        assert results[student].assignments == [], student
        assert kind in problems_text(results[student]), (student, results[student].problems)
        assert not (staging / student).exists()


# ------------------------------------------------------------------- zip input
@pytest.mark.parametrize("name", ["../evil.txt", "01_sky/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt",
                                  "C:evil.txt", "01_sky\\..\\..\\evil.txt", "01_sky/..", ".."])
def test_zip_slip_names_reject_the_zip(dirs, name):
    subs, staging = dirs
    write_zip(subs / "mallory.zip", {"01_sky/01_sky.ipynb": notebook(), name: b"escaped"})

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and "points outside its folder" in problems_text(mallory)
    assert not any(p.name.endswith("evil.txt") for p in subs.parent.rglob("*"))
    assert not Path("/tmp/evil.txt").exists() and not Path("C:").exists()


@pytest.mark.parametrize("mode, word", [(stat.S_IFLNK | 0o777, "symbolic link"), (stat.S_IFIFO | 0o644, "FIFO"),
                                        (stat.S_IFCHR | 0o644, "character device")])
def test_zip_members_that_are_links_or_special_files_reject_the_zip(dirs, mode, word):
    subs, staging = dirs
    raw_zip(subs / "mallory.zip", [stored("01_sky/01_sky.ipynb", notebook()),
                                   stored("01_sky/data", b"/etc/passwd", mode=mode)])

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and word in problems_text(mallory)
    assert not (staging / "mallory").exists()


def test_encrypted_zip_is_rejected(dirs):
    subs, staging = dirs
    raw_zip(subs / "mallory.zip", [stored("01_sky/01_sky.ipynb", notebook(), flags=0x1)])

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and "encrypted" in problems_text(mallory)


@pytest.mark.parametrize("names", [
    ["01_sky/01_sky.ipynb", "01_sky/01_sky.ipynb"],
    ["01_sky/01_sky.ipynb", "01_sky//01_sky.ipynb"],
    ["01_sky/01_sky.ipynb", "./01_sky/01_sky.ipynb"],
    ["01_sky/01_sky.ipynb", "01_sky/data", "01_sky/data/x"],  # a file and a folder of one name
])
def test_zip_with_a_name_twice_is_rejected(dirs, names):
    subs, staging = dirs
    raw_zip(subs / "mallory.zip", [stored(name, notebook(str(i))) for i, name in enumerate(names)])

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and ("twice" in problems_text(mallory) or "as a file and as a folder"
                                          in problems_text(mallory))


def test_zip_bomb_is_stopped_by_counting_bytes_written(dirs):
    """A 2 MB zip whose 100 members expand to 20 MiB each (2 GiB in all, every member within
    the per-file limit): extraction stops once 100 MiB have been written."""
    subs, staging = dirs
    zeros = bytes(20 * MiB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(zeros) + packer.flush()
    crc = zlib.crc32(zeros)
    members = [stored("01_sky/01_sky.ipynb", notebook())]
    members += [{"name": f"01_sky/part{i:03d}.bin", "data": packed, "method": 8, "crc": crc, "size": len(zeros)}
                for i in range(100)]
    bomb = raw_zip(subs / "mallory.zip", members)
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": notebook()})
    with zipfile.ZipFile(bomb) as archive:
        assert sum(i.file_size for i in archive.infolist()) > 2000 * MiB
    assert bomb.stat().st_size < 3 * MiB

    start = time.perf_counter()
    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert time.perf_counter() - start < 20
    assert results["mallory"].assignments == [] and "more than 100.0 MiB" in problems_text(results["mallory"])
    assert not (staging / "mallory").exists()
    assert results["alice"].assignments == ["01_sky"]


def test_zip_member_larger_than_its_header_says_is_not_extracted_past_it(dirs):
    """A member declaring 1 KiB that holds 30 MiB: at most what it declares is read, its CRC
    then fails and the zip is rejected as corrupt."""
    subs, staging = dirs
    data = bytes(30 * MiB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw_zip(subs / "mallory.zip", [stored("01_sky/01_sky.ipynb", notebook()),
                                   {"name": "01_sky/liar.bin", "data": packer.compress(data) + packer.flush(),
                                    "method": 8, "crc": zlib.crc32(data), "size": 1024}])

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and "cannot be read" in problems_text(mallory)
    assert not (staging / "mallory").exists()


def test_zip_limits_members_files_and_sizes(dirs):
    subs, staging = dirs
    limits = Limits(notebook_bytes=4000, model_bytes=500, other_file_bytes=300, submission_bytes=10_000, files=5,
                    zip_members=20)
    write_zip(subs / "many_members.zip", {f"01_sky/f{i}.txt": b"x" for i in range(21)})
    write_zip(subs / "many_files.zip", {"01_sky/01_sky.ipynb": notebook(),
                                        **{f"01_sky/f{i}.txt": b"x" for i in range(5)}})
    write_zip(subs / "big_files.zip", {"01_sky/01_sky.ipynb": notebook(), "01_sky/dgcnn.keras": bytes(501),
                                       "01_sky/data.csv": bytes(301), "02_kernel/02_kernel.ipynb": bytes(4001)})
    write_zip(subs / "big_total.zip", {f"{a}/{a}.ipynb": notebook("x" * 3000) for a in ASSIGNMENTS})  # 4 x 3 KiB
    results = by_student(collect(subs, staging, ASSIGNMENTS, limits))

    assert "21 members" in problems_text(results["many_members"])
    assert "more than 5 files" in problems_text(results["many_files"])
    big = results["big_files"]
    assert big.assignments == ["01_sky"] and staged_files(staging / "big_files") == ["01_sky/01_sky.ipynb"]
    assert {"01_sky", "02_kernel"} <= set(big.problems)
    text = problems_text(big)
    assert "left out 01_sky/dgcnn.keras" in text and "a model may be 500 bytes" in text
    assert "left out 01_sky/data.csv" in text and "left out 02_kernel/02_kernel.ipynb" in text
    assert "the submission holds more than 10 KiB" in problems_text(results["big_total"])
    assert results["big_total"].assignments == [] and not (staging / "big_total").exists()


def test_zip_listing_far_more_members_than_allowed_is_refused_before_zipfile_reads_them(dirs):
    subs, staging = dirs
    raw_zip(subs / "mallory.zip", [stored(f"01_sky/{i:05d}", b"") for i in range(3000)])
    with zipfile.ZipFile(subs / "mallory.zip") as archive:  # a valid zip
        assert len(archive.infolist()) == 3000

    [mallory] = collect(subs, staging, ASSIGNMENTS, Limits(zip_members=100))

    assert mallory.assignments == [] and "more than 100 members need" in problems_text(mallory)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04" + bytes(100)])
def test_corrupt_zip_is_rejected(dirs, content):
    subs, staging = dirs
    (subs / "mallory.zip").write_bytes(content)

    [mallory] = collect(subs, staging, ASSIGNMENTS)

    assert mallory.assignments == [] and "not a zip file that can be read" in problems_text(mallory)


# -------------------------------------------------------- limits on folders
def test_folder_limits(dirs):
    subs, staging = dirs
    limits = Limits(notebook_bytes=4000, model_bytes=500, other_file_bytes=300, submission_bytes=10_000, files=5,
                    zip_members=20)
    write_tree(subs / "many", {"01_sky/01_sky.ipynb": notebook(), **{f"01_sky/f{i}.txt": b"x" for i in range(5)}})
    write_tree(subs / "big", {"01_sky/01_sky.ipynb": notebook(), "01_sky/dgcnn.keras": bytes(501),
                              "02_kernel/02_kernel.ipynb": bytes(4001)})
    write_tree(subs / "total", {f"{a}/{a}.ipynb": notebook("x" * 3000) for a in ASSIGNMENTS})

    results = by_student(collect(subs, staging, ASSIGNMENTS, limits))

    assert results["many"].assignments == [] and "more than 5 files" in problems_text(results["many"])
    assert results["big"].assignments == ["01_sky"]
    assert "left out 01_sky/dgcnn.keras" in problems_text(results["big"])
    assert "02_kernel is not graded" in problems_text(results["big"])
    assert results["total"].assignments == [] and "more than" in problems_text(results["total"])
    assert not (staging / "total").exists()


# ------------------------------------------------------------- student ids
def test_invalid_student_ids_are_rejected(dirs):
    subs, staging = dirs
    for name in ["bad name", ".hidden", "ümlaut", "semi;colon", "tab\tname", "--help", "-x"]:
        write_tree(subs / name, {"01_sky/01_sky.ipynb": notebook()})
    write_zip(subs / "a$b.zip", {"01_sky/01_sky.ipynb": notebook()})
    (subs / "grades.csv").write_text("not a submission")
    write_tree(subs / "ok.id-1_2", {"01_sky/01_sky.ipynb": notebook()})

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert results["ok.id-1_2"].assignments == ["01_sky"]
    for student in ["bad name", ".hidden", "ümlaut", "semi;colon", "tab\\tname", "a$b", "--help", "-x"]:
        assert results[student].assignments == [] and "is not a student id" in problems_text(results[student])
    assert "is a file" in problems_text(results["grades.csv"])
    assert sorted(p.name for p in staging.iterdir()) == ["ok.id-1_2"]


def test_ambiguous_ids_grade_nobody_involved(dirs):
    subs, staging = dirs
    write_tree(subs / "dan", {"01_sky/01_sky.ipynb": notebook()})
    write_zip(subs / "dan.zip", {"02_kernel/02_kernel.ipynb": notebook()})
    write_tree(subs / "Gus", {"01_sky/01_sky.ipynb": notebook()})
    write_zip(subs / "gus.zip", {"01_sky/01_sky.ipynb": notebook()})
    write_tree(subs / "frank", {"01_sky/01_sky.ipynb": notebook()})
    write_zip(subs / "erin.zip", {"frank/01_sky/01_sky.ipynb": notebook()})  # erin's zip, frank's folder
    write_zip(subs / "hal.zip", {"hal/01_sky/01_sky.ipynb": notebook()})
    write_tree(subs / "ida", {"ida/01_sky/01_sky.ipynb": notebook()})  # a wrapped folder

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    for student, words in [("dan", "submitted more than once (dan.zip and dan/)"), ("Gus", "differs only by case"),
                           ("gus", "differs only by case"), ("erin", "named after frank"), ("frank", "erin.zip")]:
        assert results[student].assignments == [], student
        assert words in problems_text(results[student]), (student, results[student].problems)
        assert not (staging / student).exists()
    assert results["hal"].assignments == ["01_sky"] and results["ida"].assignments == ["01_sky"]


# --------------------------------------------------- what is taken, reported
def test_only_assignment_folders_are_taken_and_the_rest_reported(dirs):
    subs, staging = dirs
    write_tree(subs / "alice", {
        "01_sky/01_sky.ipynb": notebook(),
        "01_sky/01_sky-Copy1.ipynb": notebook(),
        "01_sky/.env": b"SECRET=1",
        "02_kernel/kernel.ipynb": notebook(),
        "03_training/.ipynb_checkpoints/03_training-checkpoint.ipynb": notebook(),
        "04_GRAPH/04_graph.ipynb": notebook(),
        "05_extra/x.ipynb": notebook(),
        "01_sky/" + "d/" * 8 + "kept.txt": b"8 folders deep",
        "01_sky/" + "d/" * 9 + "lost.txt": b"9 folders deep",
        "notes.txt": b"x",
        ".git/config": b"x",
    })
    (subs / "alice/04_graph").write_bytes(b"a file, not a folder")

    [alice] = collect(subs, staging, ASSIGNMENTS)

    assert alice.assignments == ["01_sky"]
    assert staged_files(staging / "alice") == ["01_sky/01_sky.ipynb", "01_sky/" + "d/" * 8 + "kept.txt"]
    assert "ignored 01_sky/" + "d/" * 9 + ": folders may nest 8 deep at most" in problems_text(alice)
    assert "01_sky-Copy1.ipynb: the notebook graded is 01_sky/01_sky.ipynb" in problems_text(alice)
    assert "hidden file 01_sky/.env" in problems_text(alice) and "hidden folder .git" in problems_text(alice)
    assert "expected 02_kernel/02_kernel.ipynb; 02_kernel/ holds nothing" in " ".join(alice.problems["02_kernel"])
    assert "03_training" in alice.problems  # only clutter in it
    assert "expected a folder 04_graph/" in " ".join(alice.problems["04_graph"])
    ignored = " ".join(alice.problems["*"])
    assert "04_GRAPH/ (expected 04_graph/: names are case-sensitive)" in ignored
    assert "05_extra/" in ignored and "notes.txt" in ignored


def test_empty_or_unrelated_submission_is_reported(dirs):
    subs, staging = dirs
    (subs / "empty").mkdir()
    write_zip(subs / "other.zip", {"homework.py": b"x"})

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert "no assignment folder found" in problems_text(results["empty"])
    assert "no assignment folder found" in problems_text(results["other"])
    assert "homework.py" in problems_text(results["other"])


def test_odd_file_names_are_left_out_and_reported(dirs):
    subs, staging = dirs
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": notebook(), "01_sky/new\nline.txt": b"x"})
    fd = os.open(bytes(subs / "alice/01_sky") + b"/latin1-\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    raw_zip(subs / "BOB.ZIP", [stored("01_sky/01_sky.ipynb", notebook()), stored("01_sky/bell\x07.txt", b"x")])

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert staged_files(staging / "alice") == ["01_sky/01_sky.ipynb"]
    text = problems_text(results["alice"])
    assert "ignored 01_sky/new\\nline.txt" in text and "ignored 01_sky/latin1-\\udce9.txt" in text
    assert results["BOB"].assignments == ["01_sky"] and "ignored 01_sky/bell\\x07.txt" in problems_text(results["BOB"])


@pytest.mark.parametrize("content, words", [
    (b'{"cells": [ this is not json', "JSONDecodeError"),
    (b"[1, 2, 3]", "nbformat 'list'"),
    (json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}).encode(), "nbformat 3"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(), "ValidationError"),
    (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
    (b"\xff\xfe not utf-8", "UnicodeDecodeError"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                 "cells": [{"cell_type": "raw", "metadata": {}, "source": ""}] * 2001}).encode(), "2,001 cells"),
])
def test_invalid_notebooks_are_not_staged(dirs, content, words):
    subs, staging = dirs
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": content, "01_sky/dgcnn.keras": b"m",
                                "02_kernel/02_kernel.ipynb": notebook()})

    [alice] = collect(subs, staging, ASSIGNMENTS)

    assert alice.assignments == ["02_kernel"]
    message = " ".join(alice.problems["01_sky"])
    assert "not a valid notebook" in message and words in message and "01_sky is not graded" in message
    assert not (staging / "alice/01_sky").exists()


# ----------------------------------------------------------------- the API
def test_collect_raises_only_for_the_folders_themselves(tmp_path):
    subs = write_tree(tmp_path / "subs", {"alice/01_sky/01_sky.ipynb": notebook()})
    with pytest.raises(FileNotFoundError):
        collect(tmp_path / "missing", tmp_path / "staging", ASSIGNMENTS)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        collect(tmp_path / "file", tmp_path / "staging", ASSIGNMENTS)
    write_tree(tmp_path / "used", {"x": b"x"})
    with pytest.raises(FileExistsError):
        collect(subs, tmp_path / "used", ASSIGNMENTS)
    with pytest.raises(ValueError):
        collect(subs, subs / "staging", ASSIGNMENTS)
    assert [s.assignments for s in collect(subs, tmp_path / "staging", ASSIGNMENTS)] == [["01_sky"]]


# ---------------------------------------------------------------- checksums
def test_checksums_see_every_change_and_never_follow_or_open_special_files(tmp_path):
    root = write_tree(tmp_path / "subs", {"alice/01_sky/01_sky.ipynb": notebook(), "bob/x.txt": b"x"})
    write_zip(root / "carol.zip", {"01_sky/01_sky.ipynb": notebook()})
    os.symlink("/etc/passwd", root / "bob/link")
    os.symlink(".", root / "bob/loop")
    os.mkfifo(root / "bob/fifo")
    (root / "empty").mkdir()
    before = checksum_tree(root)

    assert before["bob/link"] == "<symbolic link> -> /etc/passwd" and before["bob/fifo"] == "<FIFO>"
    assert before["empty"] == "<folder>" and len(before["carol.zip"]) == 64
    assert not any(key.startswith("bob/loop/") for key in before)
    assert compare_checksums(before, checksum_tree(root)) == []

    (root / "alice/01_sky/01_sky.ipynb").write_bytes(notebook("changed"))
    (root / "bob/x.txt").unlink()
    (root / "bob/new.txt").write_text("new")
    (root / "bob/link").unlink()
    os.symlink("/etc/shadow", root / "bob/link")
    write_zip(root / "carol.zip", {"01_sky/01_sky.ipynb": notebook("changed")})
    changes = compare_checksums(before, checksum_tree(root))

    assert changes[0].startswith("changed: alice/01_sky/01_sky.ipynb (sha256 ")
    assert "changed: bob/link (was <symbolic link> -> /etc/passwd, now <symbolic link> -> /etc/shadow)" in changes
    assert "new: bob/new.txt" in changes and "missing: bob/x.txt" in changes
    assert any(c.startswith("changed: carol.zip") for c in changes) and len(changes) == 5


def test_a_hostile_class_is_collected_and_nothing_submitted_changes(dirs):
    subs, staging = dirs
    write_tree(subs / "alice", {"01_sky/01_sky.ipynb": notebook()})
    os.symlink(subs / "alice", subs / "mallory")
    write_zip(subs / "slip.zip", {"../../escape.txt": b"x"})
    os.mkfifo(subs / "fifo")
    write_zip(subs / "bob.zip", {"bob/02_kernel/02_kernel.ipynb": notebook()})
    before = checksum_tree(subs)

    results = by_student(collect(subs, staging, ASSIGNMENTS))

    assert {k: s.assignments for k, s in results.items()} == {
        "alice": ["01_sky"], "bob": ["02_kernel"], "fifo": [], "mallory": [], "slip": []}
    assert compare_checksums(before, checksum_tree(subs)) == []
