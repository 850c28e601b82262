"""Real services the grading tests start themselves: a PostgreSQL server on a Unix socket and
a Dask scheduler with workers, each a separate process, stopped when the test ends."""

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def postgres_bin():
    """The folder with PostgreSQL's initdb and pg_ctl (Debian keeps them off PATH)."""
    for candidate in [os.environ.get("CRSKY_PG_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if candidate and Path(candidate, "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_user():
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user (or nobody)."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"], \
            entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root without a `postgres` or `nobody` user to run PostgreSQL as")


@contextlib.contextmanager
def postgres_server(database="gradebook"):
    """A private PostgreSQL server (initdb + pg_ctl) listening only on a Unix socket in a
    temporary folder. Yields the SQLAlchemy URL of an empty database."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                           "apt-get install postgresql")
    prefix, uid, gid = _as_user()
    base = Path(tempfile.mkdtemp(prefix="crsky-pg-"))
    os.chown(base, uid, gid)
    data, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir()
    os.chown(socket_dir, uid, gid)
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")

    def pg(*args, check=True):
        return subprocess.run([*prefix, *args], env=env, capture_output=True, text=True, check=check, timeout=120)

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o",
           f"-k {socket_dir} -c listen_addresses='' -c max_connections=60 -c fsync=off", "start")
        pg(str(bindir / "createdb"), "-h", str(socket_dir), "-U", "grader", database)
        yield f"postgresql://grader@/{database}?host={socket_dir}"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


class DaskCluster:
    """A Dask scheduler and workers started as separate processes (``dask scheduler``,
    ``dask worker``), as an instructor starts them on a cluster, on loopback only."""

    def __init__(self, workers=2):
        self.folder = Path(tempfile.mkdtemp(prefix="crsky-dask-"))
        self.scheduler_file = self.folder / "scheduler.json"
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        self.scheduler = self._start([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.scheduler_file)], "scheduler")
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start: {self._log('scheduler')}")
            time.sleep(0.2)
        self.workers = [self.start_worker(i) for i in range(workers)]
        self.wait_for_workers(workers)

    def _start(self, command, name):
        log = open(self.folder / f"{name}.log", "w")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=self.folder)

    def _log(self, name):
        return (self.folder / f"{name}.log").read_text()[-2000:]

    def start_worker(self, i):
        return self._start([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                            str(self.scheduler_file), "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                            "--host", "127.0.0.1", "--name", f"worker-{i}"], f"worker-{i}")

    @property
    def address(self):
        return json.loads(self.scheduler_file.read_text())["address"]

    def wait_for_workers(self, n, timeout=90):
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill_worker(self, i=0):
        """Kill worker ``i`` and everything it started (its nanny, its processes), at once."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait()

    def close(self):
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


def free_port():
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(url, token, method="GET", body=None, timeout=60):
    """``(status, headers, text)`` of one request with a Jupyter or JupyterHub token (the
    header is kept across redirects); ``body`` is sent as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"token {token}", **({"Content-Type": "application/json"} if data is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


def jupyterhub_missing():
    """Why a real JupyterHub with Unix users cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "a hub that spawns each user's server as that Unix user runs as root"
    for program in ("configurable-http-proxy", "useradd", "userdel"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install node-configurable-http-proxy passwd)"
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed"
    return None


def runnable_by_everyone(path):
    """Whether every local user may run ``path``: it and each folder above it are open to others."""
    path = Path(path)
    return path.exists() and bool(path.stat().st_mode & 0o001) and all(p.stat().st_mode & 0o001 for p in path.parents)


def shared_python():
    """A Python >= 3.11 that every local user may run (this one may live in a 0700 home), or None."""
    for candidate in [getattr(sys, "_base_executable", sys.executable), "/usr/bin/python3", "/usr/local/bin/python3"]:
        path = Path(os.path.realpath(candidate))
        if runnable_by_everyone(path):
            version = subprocess.run([str(path), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                     capture_output=True, text=True, timeout=60).stdout.strip()
            if version == "True":
                return path
    return None


def clone_with_changes(folder):
    """A fresh ``git clone`` of this repository in ``folder``, with the working tree's
    uncommitted changes to tracked files committed on top (none in CI): what is tested is
    what is here, and no ignored file (grading/course/, checkpoints, models) comes along."""
    root = Path(__file__).resolve().parents[1]
    folder = Path(folder)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(root), str(folder)], check=True, timeout=120)
    diff = subprocess.run(["git", "-C", str(root), "diff", "HEAD", "--binary"], check=True, capture_output=True,
                          timeout=60).stdout
    if diff:
        subprocess.run(["git", "-C", str(folder), "apply", "--whitespace=nowarn"], input=diff, check=True, timeout=60)
    subprocess.run(["git", "-C", str(folder), "add", "-A"], check=True, timeout=60)
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=test", "-c", "user.email=test@localhost", "commit",
                    "--quiet", "--allow-empty", "-m", "the working tree"], check=True, timeout=60)
    return folder


class CourseEnvironment:
    """What docker/Dockerfile builds for a hub's users: a new virtual environment in ``folder``
    with docker/install_course.sh run in it. ``python`` is the environment's, ``env`` what the
    script ran with (nothing of this process's Jupyter, course or Python settings) and ``log``
    what it printed. ``base_python``: the interpreter of the new environment (default: this
    one's base); ``settings``: more variables for the script (``CRSKY_SHARED_CACHE`` etc.; by
    default no shared simulations). About 2 minutes (pip's cache serves the wheels)."""

    def __init__(self, folder, instructor_config, base_python=None, **settings):
        base_python = base_python or getattr(sys, "_base_executable", sys.executable)
        subprocess.run([str(base_python), "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
        self.python = Path(folder) / "bin" / "python"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PYTHONPATH", "JUPYTER_", "CRSKY_", "VIRTUAL_ENV"))}
        self.env.update(PYTHON=str(self.python), CRSKY_SHARED_CACHE="", CRSKY_INSTRUCTOR_CONFIG=str(instructor_config),
                        PATH=os.pathsep.join([str(self.python.parent), self.env.get("PATH", "")]))
        self.env.update({key: str(value) for key, value in settings.items()})
        root = Path(__file__).resolve().parents[1]
        run = subprocess.run(["bash", str(root / "docker" / "install_course.sh"), str(root)], env=self.env,
                             capture_output=True, text=True, timeout=1200)
        if run.returncode:
            raise RuntimeError(f"docker/install_course.sh failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
        self.log = run.stdout


class UnixUser:
    """A new local account with its home in ``homes`` (removed, with everything it runs, by :meth:`remove`)."""

    def __init__(self, name, homes):
        self.name = name
        subprocess.run(["useradd", "--create-home", "--home-dir", str(Path(homes) / name), "--shell", "/bin/bash",
                        "--user-group", name], check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(name)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)

    def own(self, path):
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True, timeout=120)

    def remove(self):
        self.forget(self.name)

    @staticmethod
    def forget(name):
        """Every process of user ``name`` killed, then the account and its home removed."""
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True, timeout=60)
        time.sleep(0.5)
        subprocess.run(["userdel", "--remove", name], capture_output=True, timeout=60)


HUB_RUNS = "crsky-hub-"   # the hub test's folders in the temporary directory: crsky-hub-XXXX/homes/<user>
HUB_OWNER = "owner.pid"   # in such a folder: the process that made it (its pid and its start time)


def _start_time(pid):
    """The start time of process ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or None."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def hub_run_folder():
    """A new folder for one hub test run, every user may enter it, marked with this process;
    first the runs of processes that died without cleaning up (a killed pytest) are removed:
    their Unix users (every process of theirs killed) and their folders."""
    for stale in Path(tempfile.gettempdir()).glob(HUB_RUNS + "*"):
        owner = (stale / HUB_OWNER).read_text().split() if (stale / HUB_OWNER).is_file() else []
        alive = len(owner) == 2 and str(_start_time(owner[0])) == owner[1]
        if alive or (not owner and time.time() - stale.stat().st_mtime < 3600):
            continue  # a run in progress (or one being made, not yet marked)
        for home in (stale / "homes").glob("crsky*"):
            with contextlib.suppress(KeyError):
                if Path(pwd.getpwnam(home.name).pw_dir) == home:
                    UnixUser.forget(home.name)
        shutil.rmtree(stale, ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix=HUB_RUNS))
    base.chmod(0o755)
    (base / HUB_OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    return base


class JupyterHub:
    """A real JupyterHub on loopback with its own configurable-http-proxy, run as root so that
    its LocalProcessSpawner starts each user's ``jupyterhub-singleuser`` of the environment of
    ``python`` as that Unix user. ``config`` is more of the hub's configuration file (Python); a
    service ``course-test`` may start, stop and use every server, with :attr:`token`."""

    def __init__(self, folder, users, python, config="", spawner_env=None):
        self.folder, self.token = Path(folder), secrets.token_hex(24)
        self.folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        environment = {"PATH": os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
                       **(spawner_env or {})}
        (self.folder / "jupyterhub_config.py").write_text(f"""
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{shutil.which("configurable-http-proxy")!r}]
c.ConfigurableHTTPProxy.pid_file = {str(self.folder / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{self.folder / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(self.folder / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(self.folder / "hub.pid")!r}
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.services = [{{"name": "course-test", "api_token": {self.token!r}}}]
c.JupyterHub.load_roles = [{{"name": "course-test", "services": ["course-test"],
                             "scopes": ["admin:users", "admin:servers", "access:servers", "list:users"]}}]
c.Spawner.cmd = [{str(Path(python).parent / "jupyterhub-singleuser")!r}]
c.Spawner.environment = {json.dumps(environment)}
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
""" + config)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CRSKY_", "NBGRADER_"))}
        # Debian's configurable-http-proxy finds its modules in /usr/share/nodejs, where Debian's
        # own node looks; another node on PATH (NodeSource's) has to be told.
        env["NODE_PATH"] = os.pathsep.join(filter(None, [env.get("NODE_PATH"), "/usr/share/nodejs"]))
        self.log = open(self.folder / "hub.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(self.folder / "jupyterhub_config.py")],
                                        cwd=self.folder, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._wait(lambda: self.api("GET", "/")[0] == 200, 120, "the hub did not answer")

    def _wait(self, ready, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited {self.process.returncode}:\n{self.log_text()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} in {timeout} s:\n{self.log_text()}")
            time.sleep(0.5)

    def log_text(self, tail=6000):
        return (self.folder / "hub.log").read_text(errors="replace")[-tail:]

    def api(self, method, path, body=None):
        """``(status, parsed JSON or text)`` of a call of the hub's REST API."""
        status, _, text = http(f"{self.url}/hub/api{path}", self.token, method, body)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def start(self, user, timeout=240):
        """Start ``user``'s server as JupyterHub's *Start My Server* does and wait until it answers."""
        status, answer = self.api("POST", f"/users/{user}/server")
        assert status in (201, 202), f"starting the server of {user}: {status} {answer}\n{self.log_text()}"
        self._wait(lambda: self.api("GET", f"/users/{user}")[1]["servers"].get("", {}).get("ready"), timeout,
                   f"the server of {user} was not ready")

    def server(self, user, path, method="GET", body=None, timeout=900):
        """``(status, headers, text)`` of a request to ``user``'s server, through the hub's proxy."""
        return http(f"{self.url}/user/{user}/{path.lstrip('/')}", self.token, method, body, timeout)

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()  # the hub stops the servers and its proxy
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
