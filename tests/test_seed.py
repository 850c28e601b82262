"""crsky.grading.seed: the hidden held-out seed is made at random, kept private and refused,
with the fix, wherever students could read it; the pipeline's --seed-file goes through it."""

import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crsky.course import COURSE_ROOT
from crsky.grading import pipeline, seed
from crsky.grading.seed import DEFAULT_SEED_FILE, MIN_SEED, SeedError, files_containing, new_seed_file, read_seed_file

# A seed this file prints: the repository holds it, so no seed file may use it.
WRITTEN_IN_THE_REPOSITORY = 5772156649015328
# A seed written nowhere: drawn when the tests run.
PRIVATE = secrets.randbits(62) + MIN_SEED
FIX = "python -m crsky.grading.seed new"


def _seed_file(path, text, mode=0o600):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _refused(path, *expected, **kwargs):
    with pytest.raises(SeedError) as error:
        read_seed_file(path, **kwargs)
    message = str(error.value)
    for part in expected:
        assert part in message, (part, message)
    return message


# ------------------------------------------------------------------ a new seed
def test_a_new_seed_file_is_private_random_and_accepted(tmp_path):
    path = new_seed_file(tmp_path / "config" / "crsky" / "heldout.seed")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    value = read_seed_file(path)
    assert MIN_SEED <= value < 2**63
    assert path.read_text() == f"{value}\n"
    others = {read_seed_file(new_seed_file(tmp_path / f"other{i}.seed")) for i in range(5)}
    assert len(others | {value}) == 6


def test_a_new_seed_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        path = new_seed_file(tmp_path / "heldout.seed")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_seed_file_is_never_overwritten(tmp_path):
    path = new_seed_file(tmp_path / "heldout.seed")
    before = path.read_text()
    with pytest.raises(SeedError, match="exists already: a seed file is never overwritten"):
        new_seed_file(path)
    assert path.read_text() == before


def test_no_seed_file_is_made_in_the_checkout_or_a_mounted_folder(tmp_path):
    with pytest.raises(SeedError, match="inside .*the course checkout"):
        new_seed_file(COURSE_ROOT / "grading" / "course" / "never-written.seed")
    assert not (COURSE_ROOT / "grading" / "course" / "never-written.seed").exists()
    with pytest.raises(SeedError, match="a folder every grading sandbox mounts"):
        new_seed_file(tmp_path / "venv" / "heldout.seed", forbidden_folders=[tmp_path / "venv"])
    assert not (tmp_path / "venv").exists()


def test_the_command_line_makes_checks_and_never_prints_the_seed(tmp_path, capsys):
    path = tmp_path / "heldout.seed"
    seed.main(["new", str(path)])
    printed = capsys.readouterr().out
    value = read_seed_file(path)
    assert str(path) in printed and "mode 0600" in printed and f"--seed-file {path}" in printed
    assert "anyone with the seed can simulate the hidden maps" in printed
    assert str(value) not in printed

    seed.main(["check", str(path)])
    assert "a usable hidden seed" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="exists already"):
        seed.main(["new", str(path)])
    os.chmod(path, 0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        seed.main(["check", str(path)])


def test_the_command_line_runs_as_a_module_with_the_one_default_path(tmp_path):
    run = subprocess.run([sys.executable, "-m", "crsky.grading.seed", "new", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "~/.config/crsky/heldout.seed" in run.stdout
    env = dict(os.environ, HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "crsky.grading.seed", "new"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    made = tmp_path / ".config" / "crsky" / "heldout.seed"
    assert str(made) in run.stdout and read_seed_file(made) >= MIN_SEED


# ------------------------------------------------------------------ refusals
def test_a_missing_file_is_refused_with_the_command_that_makes_one(tmp_path):
    _refused(tmp_path / "nothing.seed", "no seed file at", f"{FIX} {tmp_path / 'nothing.seed'}")
    _refused(tmp_path, "not a regular file", FIX)


@pytest.mark.parametrize("text, found", [("", "holds nothing"), ("abc\n", "characters other than digits"),
                                         ("12345678 23456789\n", "2 values"), ("-12345678\n", "a negative number"),
                                         ("12345678.5\n", "characters other than digits"),
                                         ("0x1234567\n", "characters other than digits")])
def test_anything_but_one_non_negative_integer_is_refused(tmp_path, text, found):
    message = _refused(_seed_file(tmp_path / "s", text), "must hold one non-negative integer", found, FIX)
    assert "12345678" not in message  # what the file holds is described, never printed


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666])
def test_a_seed_file_others_can_read_or_write_is_refused(tmp_path, mode):
    path = new_seed_file(tmp_path / "heldout.seed")
    os.chmod(path, mode)
    _refused(path, f"mode {mode:04o}", f"chmod 600 {path}", "anyone with the seed can simulate the hidden maps")


def test_a_seed_file_in_the_checkout_is_refused(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    path = _seed_file(checkout / "grading" / "heldout.seed", f"{PRIVATE}\n")
    monkeypatch.setattr(seed, "COURSE_ROOT", checkout)
    _refused(path, "is inside", "the course checkout", "Move it out: mkdir -p -m 700",
             f"--seed-file {Path('~/.config/crsky/heldout.seed').expanduser()}")


def test_a_link_to_a_file_in_the_real_checkout_is_refused(tmp_path):
    link = tmp_path / "heldout.seed"
    link.symlink_to(COURSE_ROOT / "grading" / "README.md")
    _refused(link, f"is inside {COURSE_ROOT}", "the course checkout")


def test_a_seed_file_in_a_folder_a_sandbox_mounts_is_refused(tmp_path):
    venv = tmp_path / "venv"
    path = _seed_file(venv / "lib" / "heldout.seed", f"{PRIVATE}\n")
    _refused(path, f"is inside {venv}", "a folder every grading sandbox mounts", forbidden_folders=[venv])
    link = tmp_path / "elsewhere"
    link.symlink_to(venv)  # the same folder by another name
    _refused(link / "lib" / "heldout.seed", "a folder every grading sandbox mounts", forbidden_folders=[venv])
    assert read_seed_file(path, forbidden_folders=[tmp_path / "other"]) == PRIVATE


def test_a_small_seed_is_refused(tmp_path):
    _refused(_seed_file(tmp_path / "s", f"{MIN_SEED - 1}\n"), "below 1,000,000", FIX)
    assert read_seed_file(_seed_file(tmp_path / "t", f"{MIN_SEED + 7919}\n")) == MIN_SEED + 7919


def test_a_seed_written_in_the_repository_is_refused_without_printing_it(tmp_path):
    path = _seed_file(tmp_path / "s", f"{WRITTEN_IN_THE_REPOSITORY}\n")
    message = _refused(path, "is written in the repository", "tests/test_seed.py", FIX)
    assert str(WRITTEN_IN_THE_REPOSITORY) not in message


def test_the_repository_search_finds_whole_numbers_only(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "howto.md").write_text("echo 48151623 > ~/seed\n")
    (repo / "notes.txt").write_text("seed=748151623 and 481516230 and x48151623\n")  # other numbers
    (repo / "grading.ipynb").write_text('{"source": ["rng = default_rng(48151623)"]}\n')
    (repo / "model.bin").write_bytes(b"\0\x01 48151623 ")  # binary: not text
    (repo / ".venv").mkdir()
    (repo / ".venv" / "lib.py").write_text("48151623\n")  # not part of the repository
    walked = files_containing(48151623, repo)
    assert walked == ["docs/howto.md", "grading.ipynb"]
    assert files_containing(4815162, repo) == []

    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(".venv/\n")
    subprocess.run([*git, "add", "docs", "notes.txt", "model.bin", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    # tracked files and files git would add (the notebook, not yet committed); not what it ignores
    assert files_containing(48151623, repo) == walked
    assert files_containing(48151623, repo, git=False) == walked


def test_the_repository_search_is_fast():
    began = time.perf_counter()
    assert files_containing(2**62 + 1234577) == []
    with_git = time.perf_counter() - began
    began = time.perf_counter()
    assert files_containing(2**62 + 1234577, git=False) == []
    walking = time.perf_counter() - began
    assert with_git < 2 and walking < 5, (with_git, walking)


# ------------------------------------------------------------------ the pipeline
def test_the_pipeline_reads_a_generated_seed_and_turns_refusals_into_grading_errors(tmp_path, monkeypatch):
    path = new_seed_file(tmp_path / "heldout.seed")
    assert pipeline.read_seed(str(path)) == read_seed_file(path)
    assert pipeline.read_seed(None) is None
    os.chmod(path, 0o640)
    with pytest.raises(pipeline.GradingError, match="chmod 600"):
        pipeline.read_seed(str(path))

    # The folders a sandbox mounts reach the check: here a Python installation outside the checkout.
    installation = tmp_path / "python"
    inside = _seed_file(installation / "lib" / "heldout.seed", f"{PRIVATE}\n")
    assert pipeline.read_seed(str(inside)) == PRIVATE
    monkeypatch.setattr(pipeline.sandbox, "python_installation", lambda python: [str(installation)])
    with pytest.raises(pipeline.GradingError, match="a folder every grading sandbox mounts"):
        pipeline.read_seed(str(inside))


def test_the_command_line_grades_with_a_generated_seed_and_refuses_a_bad_one(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "grade", lambda submissions, results, workdir=None, options=None: seen.append(options.seed))
    path = new_seed_file(tmp_path / "heldout.seed")
    pipeline.main([str(tmp_path), "--seed-file", str(path)])
    assert seen == [read_seed_file(path)]

    bad = _seed_file(tmp_path / "docs-example.seed", f"{WRITTEN_IN_THE_REPOSITORY}\n")
    with pytest.raises(SystemExit, match="error: the seed in .* is written in the repository"):
        pipeline.main([str(tmp_path), "--seed-file", str(bad)])
    assert len(seen) == 1


# ------------------------------------------------------------------ the docs
DOCS = ["README.md", "grading/README.md", *sorted(str(p.relative_to(COURSE_ROOT)) for p in (COURSE_ROOT / "docs").glob("*.md"))]


def test_the_docs_old_example_seed_is_refused_with_the_fix(tmp_path):
    # The number grading/README.md once told instructors to echo into their seed file.
    path = _seed_file(tmp_path / "crsky-grading-seed", "918273\n")
    message = _refused(path, "below 1,000,000", FIX)
    with pytest.raises(pipeline.GradingError, match="python -m crsky.grading.seed new"):
        pipeline.read_seed(str(path))
    assert "918273" not in message


def test_the_docs_make_the_seed_with_the_command_and_name_one_seed_file(capsys):
    default = str(DEFAULT_SEED_FILE)
    assert default == "~/.config/crsky/heldout.seed"
    shown = {}
    for name in DOCS:
        text = (COURSE_ROOT / name).read_text()
        # No seed written by hand (an example number is copied as it is).
        assert not re.search(r"echo\s+[0-9]+\s*>", text), f"{name}: a seed written by hand; use {FIX}"
        for value in re.findall(r"--seed-file[ =]+(\S+)", text):
            shown.setdefault(value.strip("`'\""), []).append(name)
        if "--seed-file" in text:
            assert FIX in text, f"{name} passes --seed-file but never says how to make the file ({FIX})"
    assert set(shown) == {default}, f"the docs name the seed file differently: {shown}"
    assert {"README.md", "grading/README.md"} <= {n for names in shown.values() for n in names}
    with pytest.raises(SystemExit):
        pipeline.main(["--help"])
    help_text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert default in help_text and FIX in help_text, help_text


def test_a_seed_file_in_the_real_checkout_is_refused_by_the_pipeline():
    folder = COURSE_ROOT / "grading" / "course"  # ignored by git, so an easy place to leave a file
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"heldout-{secrets.token_hex(4)}.seed"
    try:
        _seed_file(path, f"{PRIVATE}\n")
        with pytest.raises(pipeline.GradingError, match=f"is inside {re.escape(str(COURSE_ROOT))}.*the course checkout"
                                                        ".*Move it out: mkdir -p -m 700"):
            pipeline.read_seed(str(path))
    finally:
        path.unlink(missing_ok=True)


def test_the_folders_a_sandbox_mounts_are_all_refused():
    from crsky.grading import sandbox

    folders = seed.mounted_folders()
    assert str(COURSE_ROOT) in folders and "/usr" in folders and "/etc/ssl" in folders
    for folder in sandbox.python_installation(sys.executable):
        assert folder in folders
    # The environment the sandbox binds is among them, under its real name.
    assert any(Path(sys.prefix).resolve().is_relative_to(Path(f).resolve()) for f in folders), sys.prefix
    system_file = next(p for p in ("/etc/os-release", "/usr/lib/os-release", "/usr/bin/env") if Path(p).is_file())
    with pytest.raises(pipeline.GradingError, match="a folder every grading sandbox mounts"):
        pipeline.read_seed(system_file)
