"""A real Airflow on this machine, started and stopped by the deployment tests.

:class:`AirflowStack` runs ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` (and,
for Celery, ``celery worker`` processes) as separate processes on a temporary ``AIRFLOW_HOME``, each in its
own session so that it and everything it forks can be stopped (or SIGKILLed) as a whole. Everything
listens on 127.0.0.1 only. :class:`Api` is a small client of the REST API (``/api/v2``, a JWT from the
simple auth manager's ``/auth/token``). :class:`Postgres` and :class:`Redis` run throw-away servers from
Debian's packages (``scripts/deployment/install-system-deps.sh`` installs them).

Every wait is bounded; :func:`phase` records how long each step took (printed at the end of the run).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMINGS: list[tuple[str, float]] = []
FIGURES: list[str] = []  # lines for the end-of-run summary (conftest.py)
#: The user a stack with a real login (``AirflowStack(log_in=True)``) has.
ADMIN = "admin"
FAILED = pytest.StashKey[bool]()  # set on a test item whose call failed (conftest.py)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append((name, time.monotonic() - start))
        print(f"[deployment] {name}: {time.monotonic() - start:.1f} s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """``predicate()``'s first truthy value; ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, ConnectionError, TimeoutError, FileNotFoundError):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def session_pids(sid: int) -> list[int]:
    """Every live process in session ``sid`` (a service started with ``start_new_session``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
    return pids


#: Seconds a service has to stop after SIGTERM before what is left of its session is SIGKILLed.
GRACEFUL_STOP = 20


class Service:
    """One process started in its own session, its output in ``log``; :meth:`stop` ends the session."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, **kwargs: Any) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> int:
        """SIGKILL the process and everything in its session at once (a machine dying); how many."""
        pids = session_pids(self.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        return len(pids)

    def stop(self, timeout: float = GRACEFUL_STOP) -> None:
        self.terminate()
        self.finish(timeout)

    def terminate(self) -> None:
        """SIGTERM the session: the service begins its graceful shutdown (:meth:`finish` waits for it)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the shutdown, then SIGKILL whatever is left of the session."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        for pid in session_pids(self.pid):  # whatever is left of it, also in other process groups
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def logged(self, marker: bytes) -> bool:
        """Whether the output shows ``marker`` yet; raises when the process has already exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        return marker in self.log.read_bytes()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


class Api:
    """The REST API as a user's script calls it: a JWT from ``/auth/token``, then ``/api/v2``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.token = ""

    def login(self, password: str | None = None) -> None:
        """A token for the stack's ``admin`` (``POST /auth/token``), or, with the simple auth manager's
        all_admins, one handed out without credentials (``GET /auth/token``)."""
        if password is None:
            answer = self.http.get("/auth/token")
        else:
            answer = self.http.post("/auth/token", json={"username": ADMIN, "password": password})
        answer.raise_for_status()
        self.token = str(answer.json()["access_token"])
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, f"/api/v2{path}", **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict | None = None) -> str:
        """Unpause and trigger ``dag_id``; ``logical_date=None`` is what the UI and most scripts send."""
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        body = {"logical_date": logical_date, "conf": conf or {}}
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        assert run["logical_date"] == logical_date or (logical_date and run["logical_date"]), run
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(
            self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.call("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def log(self, dag_id: str, run_id: str, ti: dict[str, Any], try_number: int) -> str:
        """The try's whole log as the UI shows it (structured lines, as JSON text)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{try_number}"
        answer = self.call("GET", path, params={"map_index": ti["map_index"], "full_content": True})
        return json.dumps(answer["content"])

    def all_logs(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Every try's log of every task instance of the run, keyed ``task[map_index]#try``."""
        logs = {}
        for ti in self.task_instances(dag_id, run_id):
            for n in range(1, int(ti["try_number"]) + 1):
                logs[f"{ti['task_id']}[{ti['map_index']}]#{n}"] = self.log(dag_id, run_id, ti, n)
        return logs


class RunWatcher:
    """Polls runs until they end, remembering every state each task instance was seen in (so that a
    sensor seen ``deferred`` can be asserted) and the triggerer that held it."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: dict[tuple[str, str, str, int], set[str]] = {}
        self.triggerer_jobs: dict[tuple[str, str, str, int], set[str]] = {}

    def poll(self, runs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        states = {}
        for dag_id, run_id in runs:
            states[(dag_id, run_id)] = self.api.dag_run(dag_id, run_id)["state"]
            for ti in self.api.task_instances(dag_id, run_id):
                key = (dag_id, run_id, ti["task_id"], ti["map_index"])
                self.seen.setdefault(key, set()).add(str(ti["state"]))
                if ti.get("triggerer_job"):
                    job = ti["triggerer_job"]
                    self.triggerer_jobs.setdefault(key, set()).add(f"{job['job_type']}#{job['id']}")
        return states

    def wait(self, runs: list[tuple[str, str]], timeout: float) -> dict[tuple[str, str], str]:
        def done() -> dict[tuple[str, str], str] | None:
            states = self.poll(runs)
            return states if all(s in ("success", "failed") for s in states.values()) else None

        return dict(wait_until(f"DAG runs {runs} to finish", done, timeout, interval=0.3))


class AirflowStack:
    """A temporary AIRFLOW_HOME and the Airflow services on it. Use as a context manager."""

    components = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(
        self,
        *,
        executor: str = "LocalExecutor",
        sql_alchemy_conn: str | None = None,
        dags: list[Path] = (),  # type: ignore[assignment]
        extra_env: dict[str, str] | None = None,
        log_in: bool = False,
    ) -> None:
        """:param log_in: a real login (the user ``admin`` and a random password) instead of the simple
        auth manager's all_admins, under which every caller, even one with no token, is an admin."""
        self.home = Path(tempfile.mkdtemp(prefix="smsww-deploy-"))
        self.dags_folder = self.home / "dags"
        self.dags_folder.mkdir()
        for dag in dags:
            shutil.copy(dag, self.dags_folder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.executor = self.name = executor
        self.services: list[Service] = []
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # Airflow 3.0's REST API returns XCom values only with this (3.1+ by default).
            "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # the first trigger look 3 s after the deferral (docs/sensor.md)
            "SMSWW_EXAMPLE_POLL_SECONDS": "3",
            **({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn} if sql_alchemy_conn else {}),
            **(extra_env or {}),
        }
        self.password = secrets.token_urlsafe(16) if log_in else None
        if self.password is not None:
            passwords = self.home / "passwords.json"
            passwords.write_text(json.dumps({ADMIN: self.password}))
            self.env.update(
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN}:admin",
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            )
        for name in [k for k in self.env if k.startswith("AIRFLOW_CONN_")]:
            del self.env[name]  # the connection comes from the metadata database, as in production
        self.api = Api(self.url)

    def __enter__(self) -> AirflowStack:
        try:
            with phase(f"{self.name}: airflow db migrate"):
                subprocess.run(
                    [str(BIN / "airflow"), "db", "migrate"],
                    env=self.env,
                    check=True,
                    stdout=(self.home / "db-migrate.log").open("w"),
                    stderr=subprocess.STDOUT,
                    timeout=300,
                )
            with phase(f"{self.name}: services up ({', '.join(self.components)})"):
                for command in self.components:
                    self.start(command, [command])
                wait_until(
                    "the api-server", lambda: httpx.get(f"{self.url}/api/v2/monitor/health").is_success, 120
                )
                self.api.login(self.password)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def start(self, name: str, args: list[str]) -> Service:
        service = Service(
            name, [str(BIN / "airflow"), *args], self.env, self.home / f"{name}.out", cwd=self.home
        )
        self.services.append(service)
        return service

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        def parsed() -> bool:
            found = {d["dag_id"] for d in self.api.call("GET", "/dags", params={"limit": 100})["dags"]}
            return set(dag_ids) <= found

        with phase(f"{self.name}: DAGs parsed"):
            wait_until(f"DAGs {dag_ids} to be parsed", parsed, timeout)
            for dag_id in dag_ids:
                assert self.api.call("GET", f"/dags/{dag_id}")["is_paused"], f"{dag_id} did not start paused"

    def add_connection(
        self, conn_id: str, conn_type: str, host: str, password: str, extra: dict[str, Any] | None = None
    ) -> None:
        body = {"connection_id": conn_id, "conn_type": conn_type, "host": host, "password": password}
        if extra:
            body["extra"] = json.dumps(extra)
        self.api.call("POST", "/connections", json=body)

    def files_containing(self, needle: str) -> list[Path]:
        """Every file under AIRFLOW_HOME (task logs, service logs) that contains ``needle``."""
        hits = []
        for path in self.home.rglob("*"):
            if path.is_file() and path.suffix not in (".db", ".cfg") and needle.encode() in path.read_bytes():
                hits.append(path)
        return hits

    def tails(self) -> str:
        return "\n".join(s.tail() for s in self.services)

    def __exit__(self, *exc: Any) -> None:
        with phase(f"{self.name}: services stopped"):
            # All at once, as a host shutting down does: each service's graceful stop overlaps the others'.
            for service in self.services:
                service.terminate()
            deadline = time.monotonic() + GRACEFUL_STOP
            for service in self.services:
                service.finish(max(deadline - time.monotonic(), 0))
            self.api.http.close()
        if exc[0] is None:
            shutil.rmtree(self.home, ignore_errors=True)
        else:
            print(f"[deployment] kept {self.home} for inspection", flush=True)
            print(self.tails(), flush=True)


class Postgres:
    """A throw-away PostgreSQL cluster (Debian's binaries) on 127.0.0.1, owned by the postgres user."""

    def __init__(self) -> None:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.initdb, self.pg_ctl = str(bindir / "initdb"), str(bindir / "pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="smsww-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self.as_postgres, *argv], capture_output=True, timeout=120)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} exited with {done.returncode}:\n{output}")

    def __enter__(self) -> Postgres:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._run(self.initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        )
        self._run(self.pg_ctl, "-D", data, "-o", options, "-l", str(self.dir / "pg.log"), "-w", "start")
        return self

    def __exit__(self, *exc: Any) -> None:
        with contextlib.suppress(subprocess.SubprocessError, RuntimeError):
            self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A throw-away redis-server on 127.0.0.1, nothing persisted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="smsww-redis-"))

    def __enter__(self) -> Redis:
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.service = Service(
            "redis", [*argv, "--dir", str(self.dir)], dict(os.environ), self.dir / "redis.log"
        )

        def pong() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until("redis", pong, 20, interval=0.1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.service.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def celery_stack(
    dags: list[Path], extra_env: dict[str, str], workers: tuple[str, ...] = ("worker1", "worker2")
) -> Iterator[tuple[AirflowStack, dict[str, Service], Postgres]]:
    """CeleryExecutor as docs/deployment.md sets it up: PostgreSQL (metadata database and Celery results)
    and Redis (broker) on loopback, the Airflow services, and ``workers`` (each a ``celery worker`` in its
    own session, so that it and the task processes it forks can be killed or measured as one), ready.
    ``extra_env`` adds to or overrides the Celery settings below (two task slots per worker)."""
    with contextlib.ExitStack() as stack:
        with phase("CeleryExecutor: PostgreSQL and Redis up"):
            postgres = stack.enter_context(Postgres())
            redis = stack.enter_context(Redis())
        env = {
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            **extra_env,
        }
        airflow = stack.enter_context(
            AirflowStack(executor="CeleryExecutor", sql_alchemy_conn=postgres.url, dags=dags, extra_env=env)
        )
        with phase(f"CeleryExecutor: Celery workers up ({', '.join(workers)})"):
            started = {name: airflow.start(name, _celery_worker_args(airflow, name)) for name in workers}
            for name, worker in started.items():
                wait_until(f"{name} ready", functools.partial(worker.logged, b" ready."), 120)
        yield airflow, started, postgres


def _celery_worker_args(airflow: AirflowStack, name: str) -> list[str]:
    flags = ["--skip-serve-logs", "--without-mingle", "--without-gossip"]
    return ["celery", "worker", "-H", f"{name}@%h", "--pid", str(airflow.home / f"{name}.pid"), *flags]
