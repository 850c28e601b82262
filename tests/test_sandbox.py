"""The grading sandbox against the real thing: bubblewrap, real ipykernels started by
nbclient over the ipc transport, and a real ``nbgrader autograde``. No mocks.

Where ``sandbox.probe()`` says no sandbox can be built here, every test is skipped with the
reason, unless ``CRSKY_REQUIRE_SANDBOX=1`` (scripts/test.sh sets it where it installed
bubblewrap): then they fail.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crsky.course import COURSE_ROOT
from crsky.grading import sandbox
from crsky.grading.sandbox.uids import processes_of

OK, REASON = sandbox.probe()
REQUIRED = os.environ.get("CRSKY_REQUIRE_SANDBOX") == "1"
pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not OK and not REQUIRED, reason=f"no sandbox here: {REASON}")]

REPO = str(COURSE_ROOT)             # the course repository (read-only, editable install of crsky)
PYTHON = sys.executable
SEED = "918273645"
IS_ROOT = os.geteuid() == 0


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A fake grading layout: a read-only 'repository' with a course folder inside it (the
    gradebook, other students' copies), a seed file, a kernelspec ``sbx`` and its ipc folder."""
    base = tmp_path_factory.mktemp("sbx")
    os.chmod(base, 0o755)
    repo = base / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("VALUE = 42\n")
    (repo / "secret.txt").write_text("top secret\n")
    (repo / "hidden_dir").mkdir()
    (repo / "hidden_dir" / "answers.txt").write_text("42\n")
    course = repo / "grading" / "course"
    (course / "autograded" / "S2" / "A").mkdir(parents=True)
    (course / "autograded" / "S2" / "A" / "other.txt").write_text("S2's work\n")
    (course / "gradebook.db").write_text("gradebook\n")
    work = course / "autograded" / "S1" / "A"
    work.mkdir(parents=True)
    seed = base / "seed"
    seed.write_text(SEED + "\n")
    for folder, _, files in os.walk(base):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    data = base / "jupyter-data"
    config = sandbox.Config(
        ro_paths=[REPO, str(repo)],
        hide=[str(seed), str(course / "gradebook.db"), str(repo / "secret.txt"), str(repo / "hidden_dir")],
        limits=sandbox.Limits(nproc=128),
    )
    sandbox.write_kernelspec(data, "sbx", config)
    sandbox.write_kernelspec(data, "sbx-small", dataclasses.replace(
        config, limits=sandbox.Limits(nproc=48)))
    (base / "rt").mkdir()
    old = {k: os.environ.get(k) for k in ("JUPYTER_DATA_DIR", "CRSKY_SEED_FILE")}
    os.environ["JUPYTER_DATA_DIR"] = str(data)
    os.environ["CRSKY_SEED_FILE"] = SEED  # the grader's secret: must not reach the kernel
    yield dict(base=base, repo=repo, course=course, work=work, seed=seed, data=data, config=config,
               ip=str(base / "rt" / "kernel"))
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def execute(course, cells, workdir, kernel="sbx", timeout=30, interrupt_on_timeout=False, allow_errors=True):
    """Run ``cells`` in a fresh kernel through nbclient with the ipc transport; returns the notebook."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config as TConfig

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    tconfig = TConfig()
    tconfig.KernelManager.transport = "ipc"
    tconfig.KernelManager.ip = course["ip"]
    client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, interrupt_on_timeout=interrupt_on_timeout,
                            allow_errors=allow_errors, config=tconfig, shutdown_kernel="graceful",
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return nb


def outputs(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def result(cell):
    """The JSON object a checking cell printed last."""
    for line in reversed(outputs(cell).splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON result in {cell.source!r}: {cell.outputs}")


# ------------------------------------------------------------------ the main battery (one kernel)
BATTERY = [
    # 0 identity, limits, capabilities
    """
    import os, json, resource
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "uid_line": status["Uid"].split(), "capeff": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip(),
        "nproc": resource.getrlimit(resource.RLIMIT_NPROC), "as": resource.getrlimit(resource.RLIMIT_AS),
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "cwd": os.getcwd(), "sid": os.getsid(0), "pid": os.getpid()}))
    """,
    # 1 processes visible
    """
    import os, json
    procs = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                procs[p] = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
            except OSError as e:
                procs[p] = repr(e)
    print(json.dumps({"procs": procs}))
    """,
    # 2 network
    """
    import socket, json, os
    res = {"ifaces": [n for _, n in socket.if_nameindex()]}
    for name, addr in (("host_port", ("127.0.0.1", HOST_PORT)), ("outside", ("1.1.1.1", 53))):
        s = socket.socket(); s.settimeout(2)
        try:
            s.connect(addr); res[name] = "connected"
        except OSError as e:
            res[name] = type(e).__name__ + ": " + str(e)
        finally:
            s.close()
    print(json.dumps(res))
    """,
    # 3 hidden paths
    """
    import os, json
    res = {}
    for p in PATHS:
        try:
            with open(p) as f:
                res[p] = "READ:" + f.read()
        except OSError as e:
            res[p] = type(e).__name__
    res["listing_hidden_dir"] = os.listdir(HIDDEN_DIR) if os.path.isdir(HIDDEN_DIR) else "absent"
    res["course_listing"] = sorted(os.listdir(COURSE)) if os.path.isdir(COURSE) else "absent"
    res["repo_pkg"] = open(REPO + "/pkg/mod.py").read()
    print(json.dumps(res))
    """,
    # 4 writes outside the working folder fail, inside it work
    """
    import os, json, site, sysconfig
    res = {}
    targets = {
        "site_packages": sysconfig.get_paths()["purelib"] + "/evil.pth",
        "course_package": REPO + "/crsky/evil.py",
        "repo": REPO + "/pkg/evil.py",
        "host_startup": "/root/.ipython/profile_default/startup/00-evil.py",
        "python_install": os.path.realpath(os.__file__) + ".evil",
        "root_fs": "/evil",
        "etc": "/etc/evil",
    }
    for name, path in targets.items():
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("import os; os.system('touch /tmp/pwned')\\n")
            res[name] = "WRITTEN"
        except OSError as e:
            res[name] = type(e).__name__
    with open("result.txt", "w") as f:
        f.write("written in the sandbox\\n")
    os.symlink("/etc/shadow", "planted-link")
    os.mkfifo("planted-fifo")
    os.chmod("result.txt", 0o6777)
    res["own_folder"] = open("result.txt").read()
    print(json.dumps(res))
    """,
    # 5 environment
    """
    import os, json
    leaked = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if b"CRSKY_SEED_FILE" in open(f"/proc/{p}/environ", "rb").read():
                    leaked.append(p)
            except OSError:
                pass
    print(json.dumps({"env": dict(os.environ), "leaked_in_proc": leaked}))
    """,
    # 6 private places: leave marks for the next sandbox to look for
    """
    import os, json
    marks = [os.path.expanduser("~/mark"), "/tmp/mark", "/var/tmp/mark", "/dev/shm/mark",
             os.path.join(os.environ["CRSKY_CACHE"], "mark"), os.path.join(os.environ["IPYTHONDIR"], "mark")]
    for m in marks:
        os.makedirs(os.path.dirname(m), exist_ok=True)
        open(m, "w").write("from the first sandbox")
    print(json.dumps({"marks": marks, "home": os.path.expanduser("~")}))
    """,
    # 7 detached processes that outlive the cell (must not outlive the kernel)
    """
    import subprocess, json
    subprocess.Popen(["/bin/sh", "-c", "sleep 2; echo late > late-popen.txt"], start_new_session=True)
    subprocess.run("setsid sh -c 'sleep 2; echo late > late-setsid.txt' >/dev/null 2>&1 < /dev/null &", shell=True)
    print(json.dumps({"started": True}))
    """,
]


@pytest.fixture(scope="module")
def battery(course):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    repo, crs = course["repo"], course["course"]
    cells = [BATTERY[0], BATTERY[1], f"HOST_PORT = {port}\n" + textwrap.dedent(BATTERY[2]),
             f"PATHS = {[str(course['seed']), str(crs / 'gradebook.db'), str(repo / 'secret.txt'), str(crs / 'autograded/S2/A/other.txt')]!r}\n"
             f"HIDDEN_DIR = {str(repo / 'hidden_dir')!r}\nCOURSE = {str(crs)!r}\nREPO = {str(repo)!r}\n"
             + textwrap.dedent(BATTERY[3]),
             f"REPO = {str(repo)!r}\n" + textwrap.dedent(BATTERY[4])] + BATTERY[5:]
    start = time.monotonic()
    nb = execute(course, cells, course["work"])
    ended = time.monotonic()
    listener.close()
    return dict(nb=nb, results=[result(c) for c in nb.cells], seconds=ended - start, ended=ended)


def test_notebook_runs_and_outputs_come_back(battery, course):
    ident = battery["results"][0]
    assert ident["cwd"] == str(course["work"])
    assert all(c.outputs for c in battery["nb"].cells)


def test_kernel_runs_as_unprivileged_uid(battery):
    ident = battery["results"][0]
    assert ident["uid"] != 0 and ident["euid"] != 0 and ident["gid"] != 0
    assert "0" not in ident["uid_line"]           # real, effective, saved, fs uid
    assert ident["capeff"] == "0000000000000000" and ident["nnp"] == "1"
    if IS_ROOT:
        assert 61000 <= ident["uid"] < 61000 + 64  # a dedicated uid, never root's
    assert ident["pid"] == 2 and ident["sid"] == 1  # own PID namespace, new session


def test_limits_apply(battery):
    ident = battery["results"][0]
    assert ident["nproc"] == [128, 128]
    assert ident["as"] == [8 * 1024 ** 3] * 2
    assert ident["fsize"] == [2 * 1024 ** 3] * 2
    assert ident["nofile"] == [1024, 1024]


def test_proc_shows_only_the_sandbox(battery):
    procs = battery["results"][1]["procs"]
    assert set(procs) <= {"1", "2"} | {str(p) for p in range(3, 40)}
    assert len(procs) <= 6, procs
    text = " ".join(procs.values())
    assert "pytest" not in text and str(os.getpid()) not in procs
    assert "--ro-bind" not in text   # bwrap's options went through --args FD


def test_no_network(battery):
    net = battery["results"][2]
    assert net["ifaces"] == ["lo"]
    assert net["host_port"].startswith("ConnectionRefusedError")  # the host's 127.0.0.1 is not this lo
    assert "connected" not in net["outside"]


def test_hidden_paths_are_invisible(battery, course):
    res = battery["results"][3]
    crs, repo = course["course"], course["repo"]
    assert res[str(course["seed"])] == "FileNotFoundError"          # outside everything bound
    assert res[str(crs / "gradebook.db")] == "FileNotFoundError"    # in a hidden folder
    assert not res[str(repo / "secret.txt")].startswith("READ:top")  # a file in a read-only tree: /dev/null
    assert res[str(crs / "autograded/S2/A/other.txt")] == "FileNotFoundError"  # another student's copy
    assert res["listing_hidden_dir"] == []
    assert res["course_listing"] == ["autograded"]                  # only the way to its own folder
    assert res["repo_pkg"] == "VALUE = 42\n"                        # the rest of the tree is readable


def test_writes_outside_own_folder_fail(battery, course):
    res = battery["results"][4]
    for name in ("site_packages", "course_package", "repo", "host_startup", "python_install", "root_fs", "etc"):
        assert res[name] in ("OSError", "PermissionError", "FileNotFoundError"), (name, res[name])
    assert res["own_folder"] == "written in the sandbox\n"
    assert not Path("/root/.ipython/profile_default/startup/00-evil.py").exists()
    assert not Path(REPO + "/crsky/evil.py").exists()


def test_own_folder_is_sanitized_after_the_kernel(battery, course):
    work = course["work"]
    assert (work / "result.txt").read_text() == "written in the sandbox\n"
    assert not os.path.lexists(work / "planted-link") and not os.path.lexists(work / "planted-fifo")
    st = os.stat(work / "result.txt")
    assert st.st_mode & 0o7002 == 0
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())  # given back to the grader


IPYKERNEL_SETS = {"TERM", "CLICOLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "PAGER", "GIT_PAGER", "MPLBACKEND", "PWD",
                  "PYDEVD_USE_FRAME_EVAL"}


def test_grader_environment_not_visible(battery, course):
    env = battery["results"][5]["env"]
    assert "CRSKY_SEED_FILE" not in env and SEED not in json.dumps(env)
    assert battery["results"][5]["leaked_in_proc"] == []   # not in bwrap's own environment either
    assert env["HOME"] == "/home/student" and env["JUPYTER_DATA_DIR"] != str(course["data"])
    allowed = set(sandbox.Sandbox(".").environment()) | set(sandbox.DEFAULT_PASS_ENV) | IPYKERNEL_SETS
    assert set(env) <= allowed, set(env) - allowed


def test_detached_processes_die_with_the_kernel(battery, course):
    time.sleep(max(0.0, battery["ended"] + 3.0 - time.monotonic()))
    assert not (course["work"] / "late-popen.txt").exists()
    assert not (course["work"] / "late-setsid.txt").exists()
    if IS_ROOT:
        assert processes_of(battery["results"][0]["uid"]) == []


# ------------------------------------------------------------------ hostile kernels
def test_killing_pid1_and_parent_only_ends_that_kernel(course, tmp_path):
    from nbclient.exceptions import DeadKernelError

    os.chmod(tmp_path, 0o755)
    cells = ["import os; os.kill(1, 9); print('after kill 1')",
             "os.kill(os.getppid(), 9); print('after kill ppid', os.getppid())",
             "os.kill(os.getpid(), 9)"]
    try:
        nb = execute(course, cells, tmp_path, timeout=10)
        texts = [outputs(c) for c in nb.cells]
    except DeadKernelError:
        texts = ["kernel died"]
    assert texts  # whatever happened inside, we are still here
    # the test process survived and can run another sandboxed kernel
    nb = execute(course, ["print(6 * 7)"], tmp_path)
    assert outputs(nb.cells[0]) == "42\n"


def test_home_tmp_cache_are_private(battery, course, tmp_path):
    """Files the battery's kernel left in HOME, /tmp, /var/tmp, /dev/shm, the cache and
    IPYTHONDIR are neither on the host nor in the next sandbox."""
    marks = battery["results"][6]["marks"]
    assert battery["results"][6]["home"] == "/home/student"
    for mark in marks:
        assert not os.path.exists(mark)
    os.chmod(tmp_path, 0o755)
    nb = execute(course, [f"import os, json; print(json.dumps({{m: os.path.exists(m) for m in {marks!r}}}))"], tmp_path)
    assert result(nb.cells[0]) == {m: False for m in marks}


def test_fork_bomb_is_capped(course, tmp_path):
    os.chmod(tmp_path, 0o755)
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    cells = [f"""
    import subprocess, os, json, time, sys
    p = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", {bomb!r}])
    peak = 0
    end = time.monotonic() + 3
    while time.monotonic() < end:
        peak = max(peak, sum(1 for d in os.listdir("/proc") if d.isdigit()))
        time.sleep(0.2)
    print(json.dumps({{"peak": peak, "uid": os.getuid()}}))
    subprocess.run(["true"], check=True)   # the kernel cannot fork any more: this cell fails
    """]
    start = time.monotonic()
    nb = execute(course, cells, tmp_path, kernel="sbx-small", timeout=60)
    res = result(nb.cells[0])
    assert 20 < res["peak"] <= 48                                           # capped by RLIMIT_NPROC
    assert any(o.get("output_type") == "error" for o in nb.cells[0].outputs)  # the cell failed
    t0 = time.monotonic()
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0   # the host is fine
    assert time.monotonic() - t0 < 5
    if IS_ROOT:
        deadline = time.monotonic() + 5
        while processes_of(res["uid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_of(res["uid"]) == []  # every bomb process went with the kernel
    assert time.monotonic() - start < 60


def test_interrupt_on_timeout_reaches_the_kernel(course, tmp_path):
    os.chmod(tmp_path, 0o755)
    nb = execute(course, ["import time; time.sleep(30)", "print('still alive')"], tmp_path, timeout=2,
                 interrupt_on_timeout=True)
    assert any(o.get("ename") == "KeyboardInterrupt" for o in nb.cells[0].outputs)
    assert outputs(nb.cells[1]) == "still alive\n"


def descendants(pid):
    """``[(pid, uid)]`` of every process below ``pid``."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            children = [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        for c in children:
            try:
                out.append((c, os.stat(f"/proc/{c}").st_uid))
            except OSError:
                continue
            todo.append(c)
    return out


def alive(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_sandbox_dies_with_the_grader(course, tmp_path):
    """A grader killed with SIGKILL leaves no sandbox behind (the launcher's parent-death signal)."""
    os.chmod(tmp_path, 0o755)
    script = textwrap.dedent(f"""
        import sys, time
        from jupyter_client.manager import KernelManager
        km = KernelManager(kernel_name="sbx", transport="ipc", ip={course['ip'] + '-orphan'!r})
        km.start_kernel(cwd={str(tmp_path)!r})
        kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=30)
        print(km.provisioner.process.pid, flush=True)
        time.sleep(60)
    """)
    grader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    launcher = int(grader.stdout.readline())
    inside = descendants(launcher)
    assert len(inside) >= 3 and alive(launcher)  # bwrap, the sandbox's pid 1, the kernel
    grader.kill()
    grader.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (alive(launcher) or any(alive(p) for p, _ in inside)):
        time.sleep(0.1)
    assert not alive(launcher) and not any(alive(p) for p, _ in inside)


# ------------------------------------------------------------------ the run() API and hiding rules
def test_run_scoring_process(course, tmp_path):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "model.txt").write_text("3\n")
    code = textwrap.dedent("""
        import json, os, socket
        import crsky  # the course package, read-only
        n = int(open("model.txt").read())
        try:
            socket.create_connection(("127.0.0.1", 22), timeout=1); net = "yes"
        except OSError:
            net = "no"
        json.dump({"score": n * 2, "net": net, "uid": os.getuid(),
                   "seed": os.environ.get("CRSKY_SEED_FILE"), "given": os.environ.get("MAPS")}, open("score.json", "w"))
    """)
    res = sandbox.run([PYTHON, "-c", code], tmp_path, ro_paths=[REPO], env={"MAPS": "maps.npz", "PYTHONPATH": REPO},
                      timeout=60, text=True)
    assert res.returncode == 0, res.stderr
    score = json.loads((tmp_path / "score.json").read_text())
    assert score == {"score": 6, "net": "no", "uid": score["uid"], "seed": None, "given": "maps.npz"}
    assert score["uid"] != 0
    assert res.command[-3:] == [PYTHON, "-c", code]


def test_run_timeout_kills_everything(tmp_path):
    os.chmod(tmp_path, 0o755)
    start = time.monotonic()
    res = sandbox.run(["/bin/sh", "-c", "(sleep 30; touch late) & sleep 30"], tmp_path, timeout=1)
    assert res.timed_out and time.monotonic() - start < 10
    time.sleep(0.5)
    assert not (tmp_path / "late").exists()


def test_parallel_sandboxes_get_different_uids(tmp_path):
    if not IS_ROOT:
        pytest.skip("dedicated uids are allocated only when the grader is root")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    os.chmod(tmp_path, 0o755)
    with sandbox.Sandbox(a) as box_a, sandbox.Sandbox(b) as box_b:
        assert box_a.uid != box_b.uid
        pa = box_a.popen(["/bin/sh", "-c", "id -u; sleep 0.5"], stdout=subprocess.PIPE)
        pb = box_b.popen(["/bin/sh", "-c", "id -u; sleep 0.5"], stdout=subprocess.PIPE)
        ids = {int(pa.communicate()[0]), int(pb.communicate()[0])}
    assert ids == {box_a.uid, box_b.uid}


def test_hide_refuses_what_it_cannot_hide(course, tmp_path):
    os.chmod(tmp_path, 0o755)
    repo = tmp_path / "tree"
    repo.mkdir()
    (repo / "gradebook.db").write_text("x")
    os.link(repo / "gradebook.db", repo / "alias.db")
    work = repo / "work"
    work.mkdir()
    with pytest.raises(sandbox.SandboxError, match="hard links"):
        sandbox.run(["true"], work, ro_paths=[str(repo)], hide=[str(repo / "gradebook.db")])
    with pytest.raises(sandbox.SandboxError, match="working folder"):
        sandbox.run(["true"], work, hide=[str(work)])
    with pytest.raises(sandbox.SandboxError, match="must stay read-only"):
        sandbox.run(["true"], REPO + "/.venv/..", ro_paths=[REPO])


def test_kernel_refuses_tcp_transport(course, tmp_path):
    """Without the ipc transport the launcher stops at once and says what to set."""
    connection = tmp_path / "kernel-tcp.json"
    connection.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1", "shell_port": 1, "iopub_port": 2,
                                      "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": "x"}))
    spec = json.loads((course["data"] / "kernels" / "sbx" / "kernel.json").read_text())
    argv = [a.replace("{connection_file}", str(connection)) for a in spec["argv"]]
    proc = subprocess.run(argv, cwd=tmp_path, env=dict(os.environ, **spec.get("env", {})),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "KernelManager.transport" in proc.stderr


def test_probe_reports_a_reason():
    assert OK and "bubblewrap" in REASON
    ok, reason = sandbox.probe(sandbox.Config(bwrap="/nonexistent/bwrap"))
    assert not ok and "not installed" in reason


# ------------------------------------------------------------------ nbgrader, end to end
SOURCE_CELLS = [
    ("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
     {"grade": False, "solution": True, "locked": False, "grade_id": "add_solution"}),
    ("code", "assert add(1, 2) == 3\nassert add(-1, 1) == 0",
     {"grade": True, "solution": False, "locked": True, "grade_id": "add_test", "points": 2}),
]


def test_nbgrader_autograde_with_sandboxed_kernel(course, tmp_path):
    import nbformat

    root = tmp_path / "course"
    (root / "source" / "ps1").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, meta in SOURCE_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
        nb.cells.append(cell)
    nbformat.write(nb, root / "source" / "ps1" / "ps1.ipynb")
    data = tmp_path / "jupyter"
    # the grader's kernelspec: the gradebook and every other course folder are hidden
    config = sandbox.Config(ro_paths=[REPO], hide=[str(root / "gradebook.db"), str(root / "source"),
                                                   str(root / "release"), str(root / "submitted")])
    sandbox.write_kernelspec(data / "data", "crsky-sandbox", config)
    env = dict(os.environ, JUPYTER_DATA_DIR=str(data / "data"), JUPYTER_CONFIG_DIR=str(data / "config"),
               JUPYTER_RUNTIME_DIR=str(data / "runtime"),
               PATH=os.pathsep.join([os.path.dirname(PYTHON), os.environ.get("PATH", "")]))
    common = [f"--CourseDirectory.root={root}"]
    gen = subprocess.run([PYTHON, "-m", "nbgrader", "generate_assignment", "ps1", "--force", *common],
                         cwd=root, env=env, capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    # the student's submission: the solution, plus an attempt to read the gradebook
    sub = nbformat.read(root / "release" / "ps1" / "ps1.ipynb", as_version=4)
    target = tmp_path / "root-owned.txt"   # a file only the (root) grader may write
    target.write_text("untouched\n")
    sub.cells[0].source = (f"def add(a, b):\n    return a + b\n"
                           f"import os\nprint('gradebook visible:', os.path.exists({str(root / 'gradebook.db')!r}))\n"
                           f"print('uid', os.getuid())\n"
                           # the attack: nbgrader (root) writes the graded notebook after the kernel
                           # ends; a planted link would redirect that write to any file of the host
                           f"os.rename('ps1.ipynb', 'ps1.bak'); os.symlink({str(target)!r}, 'ps1.ipynb')")
    (root / "submitted" / "S" / "ps1").mkdir(parents=True)
    nbformat.write(sub, root / "submitted" / "S" / "ps1" / "ps1.ipynb")
    os.chmod(tmp_path, 0o755)
    start = time.monotonic()
    auto = subprocess.run([PYTHON, "-m", "nbgrader", "autograde", "ps1", "--student", "S", "--force", *common,
                           "--ExecutePreprocessor.kernel_name=crsky-sandbox", "--KernelManager.transport=ipc",
                           f"--KernelManager.ip={data / 'runtime' / 'kernel'}"],
                          cwd=root, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    assert auto.returncode == 0, auto.stdout + auto.stderr
    graded = nbformat.read(root / "autograded" / "S" / "ps1" / "ps1.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in graded.cells[0].outputs)
    assert "gradebook visible: False" in text and "uid 0\n" not in text
    assert target.read_text() == "untouched\n"   # the planted link was removed before nbgrader wrote
    assert not os.path.islink(root / "autograded" / "S" / "ps1" / "ps1.ipynb")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_submission("ps1", "S").score == 2
    print(f"nbgrader autograde (1 student, sandboxed kernel): {seconds:.1f} s")


# ------------------------------------------------------------------ overhead
def test_kernel_start_overhead(course, tmp_path):
    from jupyter_client.manager import KernelManager

    os.chmod(tmp_path, 0o755)

    def start(name, **kw):
        t = time.monotonic()
        km = KernelManager(kernel_name=name, **kw)
        km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive("1", timeout=30, output_hook=lambda msg: None)
        elapsed = time.monotonic() - t
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        return elapsed

    plain = [start("python3", transport="ipc", ip=course["ip"] + "-plain")]
    boxed = [start("sbx", transport="ipc", ip=course["ip"])]
    print(f"kernel start to first reply: plain {min(plain):.2f} s, sandboxed {min(boxed):.2f} s")
    assert min(boxed) < min(plain) + 2.0
