"""Stand-ins for Airflow pieces that the operator tests drive by hand, and the connections the tests set
(imported, not fixtures)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.airflow_versions import NoStatsLogger, stats_backend

if TYPE_CHECKING:
    from airflow_provider_smsww.sandbox.server import SandboxHandle

API = "https://sms.example.test"
TOKEN = "unit-test-token-0123456789"
#: Message ids the delivery tests watch, and the recipient each was sent to.
IDS = ["aaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaaaaaaaaaa3"]
RECIPIENTS = ["+393331234500", "+393331234501", "+393331234502"]
#: The text and a callback header of every message: neither may reach XCom, an event or a log.
TEXT = "secret-ish text that must not reach XCom"
CALLBACK_SECRET = "callback-secret"


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "smsww_default", **fields: Any) -> None:
    """Make ``conn_id`` the connection given by ``fields`` (``conn_type`` is added): the one way the
    unit tests set up a connection."""
    conn = json.dumps({"conn_type": "smsww", **fields})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)


def sandbox_connection(
    handle: SandboxHandle,
    *,
    oauth: bool = False,
    token: str | None = None,
    api_key: str | None = None,
    **extra: Any,
) -> str:
    """The connection JSON to the sandbox ``handle``: its static token (``token`` instead, if given), or
    with ``oauth`` its email and API key (``api_key`` instead, if given); ``extra`` is added to the
    connection's extra. Built from the handle's own ``conn_json``/``oauth_conn_json``."""
    conn = json.loads(handle.oauth_conn_json if oauth else handle.conn_json)
    if token is not None:
        conn["password"] = token
    if api_key is not None:
        conn["extra"] = {**conn["extra"], "api_key": api_key}
    if extra:
        conn["extra"] = {**conn.get("extra", {}), **extra}
    return json.dumps(conn)


def connect(monkeypatch: pytest.MonkeyPatch, handle: SandboxHandle, **kwargs: Any) -> None:
    """Point ``smsww_default`` at the sandbox ``handle`` (``kwargs`` as in :func:`sandbox_connection`):
    the one way the integration tests connect to a sandbox."""
    monkeypatch.setenv("AIRFLOW_CONN_SMSWW_DEFAULT", sandbox_connection(handle, **kwargs))


class FakeStore:
    """Airflow 3.3's ``task_state_store``: a key/value store that survives task retries.

    ``set`` raises on the ``fail_on_set``-th write, which is how the tests crash a worker between the
    gateway accepting a message and the ledger recording it. Values go through JSON, as in the real
    store.
    """

    def __init__(self, fail_on_set: int | None = None) -> None:
        self.data: dict[str, Any] = {}
        self.sets = 0
        self.gets: list[str] = []
        self.fail_on_set = fail_on_set

    def get(self, key: str, default: Any = None) -> Any:
        self.gets.append(key)
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        if self.fail_on_set is not None and self.sets == self.fail_on_set:
            raise RuntimeError("worker crashed while recording an accepted message")
        self.data[key] = json.loads(json.dumps(value))

    def recorded(self) -> dict[str, Any]:
        """What the retry ledger holds: recipient -> record, from every group it wrote."""
        groups = (v for k, v in self.data.items() if k.startswith("smsww:accepted:"))
        return {recipient: record for group in groups for recipient, record in group.items()}


class FakeMessages:
    """``GET /messages/{id}`` for the sensor and trigger tests: each id walks through its list of
    states, one per read (the last repeats); ids not listed answer 404; ``faults`` are answered
    first, one per request. :meth:`slow` answers after a short sleep and counts reads in flight."""

    def __init__(self, states: dict[str, Iterable[str]], blocklisted: Iterable[str] = ()) -> None:
        self.states = {i: list(s) for i, s in states.items()}
        self.blocklisted = set(blocklisted)
        self.reads: list[str] = []
        self.faults: list[httpx.Response] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def record(self, message_id: str) -> dict[str, Any]:
        states = self.states[message_id]
        state = states.pop(0) if len(states) > 1 else states[0]
        return {
            "id": message_id,
            "state": state,
            "recipient": RECIPIENTS[IDS.index(message_id)] if message_id in IDS else "+393331234599",
            "message": TEXT,
            "encoding": "GSM-7",
            "messageCount": 1,
            "price": 0.05,
            "totalPrice": 0.05,
            "blocklisted": message_id in self.blocklisted,
            "blocklistedReason": "forbidden word" if message_id in self.blocklisted else None,
            "callback": {"url": "https://hooks.example.test/x", "headers": {"X-Key": CALLBACK_SECRET}},
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        message_id = request.url.path.rsplit("/", 1)[-1]
        self.reads.append(message_id)
        if self.faults:
            return self.faults.pop(0)
        if message_id not in self.states:
            return httpx.Response(404, json={"code": 404, "message": "Message not found"})
        return httpx.Response(200, json={"data": self.record(message_id)})

    async def slow(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return self(request)


#: A scripted answer: a response, or (status, JSON body) made into a fresh response each time.
Answer = httpx.Response | tuple[int, dict[str, Any]]


def _respond(answer: Answer) -> httpx.Response:
    return answer if isinstance(answer, httpx.Response) else httpx.Response(answer[0], json=answer[1])


class FakeGateway:
    """The SMS API behind pytest-httpx, for every unit test that sends: ``POST /{region}-messages``
    answers dry runs (free, without an id) and stores real sends; ``GET /messages`` lists what it
    stored, newest first. Every request must carry the Bearer :data:`TOKEN`.

    What a test can script:

    - ``price``: EUR per part in dry runs (0: unpriced, as worldwide dry runs may be);
      ``real_price``: EUR per part of real sends (None: ``price``); ``parts``: the part count the API
      reports (None: counted as the API counts, from the text).
    - ``forbidden``: words whose texts are refused with 422 code 2044, dry run or real.
    - ``send_token``: the token real sends must carry (a per-task capped token); ``wallet_cap``: a
      callable giving that token's ``walletAmount`` (None: no cap), past which a real send is refused
      with 402 code 2035 before anything is stored; ``spent`` adds up what real sends cost.
    - ``fail``: recipient -> the answer to every POST for it, dry run or real.
    - ``fail_sends``: recipient -> the answer to its real sends only.
    - ``refuse_dry_run``: the answer to every dry run.
    - ``dry_run_echo``: True echoes ``options``; False sends dry runs for real (a gateway or proxy that
      ignores ``dryRun``: stored, and answered with ``options.dryRun`` false); None leaves ``options``
      out of the answer.
    - ``blocklist_dry_runs``: recipients whose dry runs come back blocklisted.
    - ``lose_once``: a 502 before anything is stored; ``garble_once``: stored, then an unreadable 201;
      ``uncertain_once``: stored, then a 502 HTML page.
    - How ``GET /messages`` lists: ``list_national``: Italian numbers in national form with their
      ``internationalPrefix`` ("3331234567", "39"); ``list_dry_runs``: accepted dry runs are listed
      too, without any ``options`` object (as a gateway was seen to do); ``list_lag``: a message is
      listed only that long after it was stored, by ``clock`` (None: real time).
    - ``clock_behind``: the gateway's own clock runs that much behind ours, in ``createdAt`` and in a
      ``Date`` header on every answer (None: no ``Date`` header).

    What it records: ``posts`` (recipient, dry run?) of every POST, ``paths``, ``bodies`` and
    ``dry_runs`` (the bodies of accepted real sends and dry runs), ``stored`` (the real sends it
    stored), ``listing`` (what ``GET /messages`` may list, oldest first, with when each was stored).
    """

    def __init__(self, price: float = 0.05, parts: int | None = None) -> None:
        self.price, self.parts = price, parts
        self.real_price: float | None = None
        self.forbidden: set[str] = set()
        self.send_token = TOKEN
        self.wallet_cap: Callable[[], Any] | None = None
        self.spent = Decimal(0)
        self.fail: dict[str, Answer] = {}
        self.fail_sends: dict[str, Answer] = {}
        self.refuse_dry_run: Answer | None = None
        self.dry_run_echo: bool | None = True
        self.blocklist_dry_runs: set[str] = set()
        self.lose_once: set[str] = set()
        self.garble_once: set[str] = set()
        self.uncertain_once: set[str] = set()
        self.posts: list[tuple[str, bool]] = []
        self.paths: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.dry_runs: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []
        self.list_national = False
        self.list_dry_runs = False
        self.list_lag = timedelta(0)
        self.clock: Callable[[], datetime] | None = None
        self.clock_behind: timedelta | None = None
        self.listing: list[tuple[datetime, dict[str, Any]]] = []
        self._ids = itertools.count(1)

    def message(self, body: dict[str, Any], *, id: str, price: float | None = None) -> dict[str, Any]:
        from airflow_provider_smsww.segments import analyse

        info = analyse(body["message"])
        parts = info.parts if self.parts is None else self.parts
        price = self.price if price is None else price
        return {
            "id": id,
            "state": "NEW",
            "recipient": body["recipient"],
            "message": body["message"],
            "sender": body.get("sender") or "Openapi",
            "encoding": info.encoding,
            "messageCount": parts,
            "price": price,
            "totalPrice": price * parts,
            "createdAt": (datetime.now(UTC) - (self.clock_behind or timedelta(0))).isoformat(),
            "callback": body.get("callback"),
            "options": body["options"],
        }

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self._answer(request)
        if self.clock_behind is not None:
            response.headers["Date"] = format_datetime(datetime.now(UTC) - self.clock_behind, usegmt=True)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.headers["Authorization"] in (f"Bearer {TOKEN}", f"Bearer {self.send_token}")
            skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
            now = self.now()
            listed = [self._listed(m) for at, m in reversed(self.listing) if now - at >= self.list_lag]
            return httpx.Response(200, json={"data": listed[skip : skip + limit]})
        body = json.loads(request.content)
        recipient, dry = body["recipient"], body["options"]["dryRun"]
        self.posts.append((recipient, dry))
        self.paths.append(request.url.path)
        if recipient in self.fail:
            return _respond(self.fail[recipient])
        if any(word in body["message"] for word in self.forbidden):
            return httpx.Response(422, json={"code": 2044, "message": "Forbidden content"})
        if dry:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            if self.dry_run_echo is not False:
                return self._dry_run(body)
        else:
            assert request.headers["Authorization"] == f"Bearer {self.send_token}"
            if recipient in self.fail_sends:
                return _respond(self.fail_sends[recipient])
        if recipient in self.lose_once:
            self.lose_once.discard(recipient)
            return httpx.Response(502)
        price = self.price if self.real_price is None else self.real_price
        message = self.message(body, id=f"{next(self._ids):024x}", price=price)
        cap = self.wallet_cap() if self.wallet_cap is not None else None
        cost = Decimal(str(message["totalPrice"]))
        if cap is not None and self.spent + cost > Decimal(str(cap)):
            return httpx.Response(
                402, json={"code": 2035, "message": f"Token limit reached: walletAmount {cap}"}
            )
        self.spent += cost
        if dry:  # the gateway ignored dryRun: a real send, reported as such
            message["options"] = {**body["options"], "dryRun": False}
        self.bodies.append(body)
        self.stored.append(message)
        self.listing.append((self.now(), message))
        if recipient in self.garble_once:
            self.garble_once.discard(recipient)
            return httpx.Response(201, html="<html>accepted</html>")
        if recipient in self.uncertain_once:
            self.uncertain_once.discard(recipient)
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(201, json={"data": message})

    def _dry_run(self, body: dict[str, Any]) -> httpx.Response:
        if self.refuse_dry_run is not None:
            return _respond(self.refuse_dry_run)
        self.dry_runs.append(body)
        message = self.message(body, id="")
        if self.dry_run_echo is None:
            del message["options"]
        if body["recipient"] in self.blocklist_dry_runs:
            message |= {"blocklisted": True, "blocklistedReason": "forbidden word"}
        if self.list_dry_runs:
            listed = {k: v for k, v in message.items() if k != "options"}
            self.listing.append((self.now(), listed | {"id": f"{next(self._ids):024x}"}))
        return httpx.Response(201, json={"data": message})

    def _listed(self, message: dict[str, Any]) -> dict[str, Any]:
        recipient = message["recipient"]
        if self.list_national and recipient.startswith("+39"):
            return message | {"recipient": recipient[3:], "internationalPrefix": "39"}
        return message

    def sent_to(self) -> list[str]:
        """Recipients of the stored (accepted) real sends, in order."""
        return [m["recipient"] for m in self.stored]

    def dry_run_to(self) -> list[str]:
        """Recipients of the accepted dry runs, in order."""
        return [b["recipient"] for b in self.dry_runs]

    def real_sends(self) -> list[str]:
        """Recipients of every real POST, accepted or not."""
        return [r for r, dry in self.posts if not dry]


class StatsRecorder(NoStatsLogger):
    """A Stats backend keeping every counter increment and gauge (everything else does nothing); install it
    with the ``metrics`` fixture of the test modules that check Airflow metrics."""

    def __init__(self) -> None:
        self.counts: list[tuple[str, int, dict[str, Any]]] = []
        self.gauges: list[tuple[str, float, dict[str, Any]]] = []

    def incr(self, stat: str, count: int = 1, rate: int = 1, *, tags: dict[str, str] | None = None) -> None:
        self.counts.append((stat, count, dict(tags or {})))

    def gauge(
        self,
        stat: str,
        value: float,
        rate: int = 1,
        delta: bool = False,
        *,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.gauges.append((stat, value, dict(tags or {})))


@contextmanager
def recorded_metrics() -> Iterator[StatsRecorder]:
    """Airflow's ``Stats`` sent to a :class:`StatsRecorder` for the duration of the block."""
    recorder = StatsRecorder()
    with stats_backend(lambda: recorder):
        yield recorder


class XComTI:
    """The parts of a task instance the operator and sensor use outside a worker: ``map_index``,
    ``try_number`` and ``xcom_push`` (kept as JSON, as the real XCom does)."""

    map_index = -1

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = json.loads(json.dumps(value))


def task_context(
    store: FakeStore | None = None,
    *,
    try_number: int = 1,
    ti: XComTI | None = None,
    run_id: str = "manual__1",
    dag_run: Any = None,
) -> dict[str, Any]:
    """The context ``SmsSendOperator.execute`` reads when a test drives it by hand: the task instance
    (try ``try_number``), the run id, and the task state store and DAG run when given (without a
    store, the operator keeps its ledger in memory, as before Airflow 3.3)."""
    context: dict[str, Any] = {"ti": ti or XComTI(try_number), "run_id": run_id}
    if store is not None:
        context["task_state_store"] = store
    if dag_run is not None:
        context["dag_run"] = dag_run
    return context


def example_dag_module(name: str) -> Any:
    """The example DAG file ``example_dags/<name>.py``, imported as a module of its own."""
    path = Path(__file__).parents[1] / "example_dags" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_dag_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
