"""The embedded sandbox in a child process, for the benchmarks (a helper, not a benchmark).

Why a child process: ``run_sandbox`` serves uvicorn in a *thread*, so in the benchmark's own process
the server and the code under test would share one GIL and the client would be charged for the
server's work. In a child process the server gets its own interpreter (its own core of the two), like
a real gateway on another machine, and its CPU time can be read separately: that is how the
benchmarks tell "the client is slow" from "the sandbox is the bottleneck".

The child serves on 127.0.0.1 only (a free port), prints one JSON line (url, token, conn_json, pid),
then answers one JSON command per stdin line with one JSON line on stdout:

- ``{"cmd": "stats"}``: accepted messages, duplicates, dry runs, requests by route and status, the
  seconds from the first accepted message to the last as the sandbox stored them (``stored_span``),
  and the child's CPU seconds (``time.process_time``: the uvicorn thread included);
- ``{"cmd": "per_recipient"}``: accepted messages per recipient (the judge of "exactly once");
- ``{"cmd": "reset"}``: forget messages, logs and charges, back to the configured credit;
- ``{"cmd": "seed", "recipients": [...], "message": str, "deliver_from": s, "deliver_to": s}``:
  store one real WW message per recipient directly in the sandbox state (no HTTP, so seeding costs the
  sensor benchmark nothing) and spread their delivery evenly over ``[deliver_from, deliver_to]``
  seconds from now; answers the ids;
- ``{"cmd": "timeline"}`` (started with ``timeline=True``): one ``[t, method, route, first_page, status]``
  per HTTP request in arrival order, ``t`` the arrival in ``time.time()`` seconds and ``first_page`` whether
  it asked ``GET /messages`` for ``skip=0`` (a listing walk, that is a poll round, begins there);
- ``{"cmd": "quit"}``.

Parent side: :class:`SandboxProcess` (a context manager), plus the set-up every benchmark shares:
:func:`throwaway_airflow_home`, :func:`run_tasks_outside_a_worker` and :func:`italian_mobiles`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any


def throwaway_airflow_home() -> None:
    """A temporary AIRFLOW_HOME, removed on exit, unless one is set: never ~/airflow. Call it before
    anything imports Airflow (it reads the home once, at import)."""
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="smsww-bench-airflow-")
        atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def run_tasks_outside_a_worker(*, verbose: bool) -> None:
    """The benchmarks call ``execute()``/``poke()`` directly: no warning per call for that, and (unless
    ``verbose``) Airflow's task logs at WARNING, so that per-request INFO lines do not time the terminal."""
    if not verbose:
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    from airflow.sdk.bases.operator import ExecutorSafeguard

    ExecutorSafeguard.test_mode = True


def italian_mobiles(n: int, start: int) -> list[str]:
    """``n`` distinct valid Italian mobiles from +39 333 ``start`` on (``start`` >= 1,000,000 keeps
    clear of the sandbox's magic numbers)."""
    return [f"+39333{start + i:07d}" for i in range(n)]


class SandboxProcess:
    """Starts the child and talks to it. ``url``, ``token``, ``conn_json`` once started."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SandboxProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        self.info = json.loads(line)
        if not self.info["url"].startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the sandbox is not on loopback: {self.info['url']}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self.call("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def token(self) -> str:
        return str(self.info["token"])

    @property
    def conn_json(self) -> str:
        return str(self.info["conn_json"])

    def call(self, cmd: str, **args: Any) -> Any:
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("the sandbox process is not running")
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox process died during {cmd!r}")
        return json.loads(line)

    def cpu(self) -> float:
        """CPU seconds the sandbox process has used so far (server thread included)."""
        return float(self.call("stats")["cpu"])


def _route(path: str) -> str:
    return "/messages/{id}" if path.startswith("/messages/") else path


class _Timeline:
    """Wraps the sandbox's ASGI app to note each HTTP request's arrival (wall clock, so that the parent
    can compare it with Airflow's times), route, whether it is a listing's first page, and the status
    it was answered with. Outside the app, so that it sees every answer, a refusal by any middleware too,
    and the sandbox's own code stays as it is."""

    def __init__(self, app: Any) -> None:
        self.app, self.state = app, app.state
        self.requests: list[list[Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        first_page = scope["path"] == "/messages" and "skip=0" in query.split("&")
        row: list[Any] = [time.time(), scope["method"], _route(scope["path"]), first_page, 0]
        self.requests.append(row)

        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                row[4] = message["status"]
            await send(message)

        await self.app(scope, receive, noting)


def _timed_build(timelines: list[_Timeline]) -> None:
    """Make ``run_sandbox`` serve its app behind a :class:`_Timeline` (kept in ``timelines``)."""
    from airflow_provider_smsww.sandbox import server

    build = server.build

    def timed(**kwargs: Any) -> tuple[Any, Any, Any]:
        app, sandbox, injector = build(**kwargs)
        timelines.append(_Timeline(app))
        return timelines[-1], sandbox, injector

    server.build = timed


def _child(config: dict[str, Any]) -> None:
    # Imported here: the parent side of this module must stay light.
    from airflow_provider_smsww.sandbox.faults import FaultConfig
    from airflow_provider_smsww.sandbox.server import run_sandbox

    timelines: list[_Timeline] = []
    if config.pop("timeline", False):
        _timed_build(timelines)
    latency = float(config.pop("latency", 0.0))
    paths = tuple(config.pop("latency_paths", ("/WW-messages", "/messages")))
    faults = FaultConfig(latency=latency, paths=paths)
    with run_sandbox("127.0.0.1", 0, faults=faults, **config) as handle:
        box = handle.sandbox
        print(
            json.dumps({"url": handle.url, "token": handle.token, "conn_json": handle.conn_json}), flush=True
        )
        for line in sys.stdin:
            command = json.loads(line)
            cmd = command.pop("cmd")
            reply: Any
            if cmd == "quit":
                print("{}", flush=True)
                return
            if cmd == "reset":
                handle.reset()
                reply = {"ok": True}
            elif cmd == "stats":
                counts = box.per_recipient()
                routes = Counter(f"{m} {_route(p)} {s}" for m, p, s in list(box.requests))
                created = [m.created for m in box.accepted()]
                reply = {
                    "stored_span": max(created) - min(created) if created else 0.0,
                    "accepted": sum(counts.values()),
                    "recipients": len(counts),
                    "duplicates": sum(1 for n in counts.values() if n > 1),
                    "dry_runs": box.dry_runs,
                    "requests": dict(routes),
                    "cpu": time.process_time(),
                }
            elif cmd == "per_recipient":
                reply = dict(box.per_recipient())
            elif cmd == "timeline":
                reply = timelines[0].requests if timelines else []
            elif cmd == "seed":
                reply = _seed(box, **command)
            else:
                reply = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(reply), flush=True)


def _seed(box: Any, recipients: list[str], message: str, deliver_from: float, deliver_to: float) -> list[str]:
    """Real sends straight into the state, then delivery spread evenly over [from, to] s from now.

    The sandbox has one ``delivered_after`` for every message (configure it as ``deliver_to``); a
    message due at ``d`` seconds is made to look created ``deliver_to - d`` seconds ago.
    """
    ids: list[str] = []
    n = len(recipients)
    with box._lock:  # one consistent batch; the server thread waits meanwhile
        for i, recipient in enumerate(recipients):
            wire = box.send("WW", {"recipient": recipient, "message": message})
            stored = box.messages[wire["id"]]
            due = deliver_from + (deliver_to - deliver_from) * (i / max(1, n - 1))
            stored.created -= box.config.delivered_after - due
            ids.append(wire["id"])
    return ids


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
