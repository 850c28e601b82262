"""Real services the grading tests start themselves: a PostgreSQL server on a Unix socket and
a Dask scheduler with workers, each a separate process, stopped when the test ends."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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
        import json

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
