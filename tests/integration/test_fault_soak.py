"""Fault soak: 1,000 sends through SmsSendOperator against the sandbox while it misbehaves.

The sandbox injects 5xx (before and after processing), 429 with a short Retry-After, latency and
dropped connections (before and after processing) on the send paths and on ``GET /messages``; the
worker "crashes" half way (the task state store fails a write, the worst window being "accepted by the
gateway but not yet recorded"); the task is retried with the same store. The sandbox's own record is
the judge: every recipient has exactly one accepted message, none is missing, and the operator's final
XCom names each recipient once with the sandbox's id.

Designed behaviour under these rates: a real send whose outcome is unknown (5xx, dropped connection)
is never resent blindly; it is looked up in ``GET /messages`` at the end of the round and, when it is
not there (yet), not resent in that try: the try ends with "outcome unknown ..." and the next task try
looks again and finishes it, still exactly once. So the soak runs tries until one succeeds (bounded)
and asserts that every try after the first only ever sends to recipients the sandbox does not have.

Everything is seeded and runs on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww._http.client import AsyncSmsWwClient
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sandbox.faults import SEND_PATHS, FaultConfig
from airflow_provider_smsww.sandbox.server import SandboxHandle, in_process_sandbox, run_sandbox
from airflow_provider_smsww.sending import bulk as bulk_module
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.ledger import MemoryLedger
from tests.fakes import FakeStore, connect, task_context

pytestmark = pytest.mark.integration

#: The operator's context in this module's runs.
context = functools.partial(task_context, run_id="soak__1")

TEXT = "Your parcel is on its way"
N = 1000
RECIPIENTS = [f"+39347{i:07d}" for i in range(N)]

#: ~20% 5xx (half before, half after processing), ~10% 429, ~3% drops each way, a little latency.
SOAK_FAULTS = FaultConfig(
    rate_5xx=0.10,
    rate_5xx_after=0.10,
    rate_429=0.10,
    retry_after=0.01,
    rate_drop_before=0.03,
    rate_drop_after=0.03,
    latency=0.001,
    paths=(*SEND_PATHS, "/messages"),
    seed=20261125,
)


class SendTap:
    """Wraps the sandbox's ``send`` to see every processed send in order: (try, dry run, recipient)."""

    def __init__(self, handle: SandboxHandle) -> None:
        self.calls: list[tuple[int, bool, str]] = []
        self.try_number = 0
        original = handle.sandbox.send

        def send(region: str, body: Any, token: Any = None) -> dict[str, Any]:
            dry = bool((body.get("options") or {}).get("dryRun"))
            self.calls.append((self.try_number, dry, str(body.get("recipient"))))
            return original(region, body, token)

        handle.sandbox.send = send  # type: ignore[method-assign]

    def of_try(self, n: int) -> list[tuple[bool, str]]:
        return [(dry, r) for t, dry, r in self.calls if t == n]


class ReconcileTap:
    """Counts the operator's reconciliations (``sending.reconcile``) and what they found."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int]] = []  # (asked for, found)
        original = bulk_module.reconcile

        async def reconcile(hook: Any, batch: Any, recipients: Any, since: Any, **kw: Any) -> Any:
            wanted = list(recipients)
            found = await original(hook, batch, wanted, since, **kw)
            self.calls.append((len(wanted), len(found)))
            return found

        monkeypatch.setattr(bulk_module, "reconcile", reconcile)


async def _crash(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("worker crashed")


def use(monkeypatch: pytest.MonkeyPatch, handle: SandboxHandle, max_retries: int = 12) -> None:
    # A short backoff keeps the soak fast; the retry decisions are the production ones.
    connect(monkeypatch, handle, max_retries=max_retries, backoff_base=0.002, backoff_max=0.05)


def operator(**kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("recipients", RECIPIENTS)
    kwargs.setdefault("message", TEXT)
    kwargs.setdefault("max_concurrency", 25)
    # The sandbox lists a message as soon as it stores it: a short settle time keeps the soak fast.
    kwargs.setdefault("settle_time", 0.05)
    return SmsSendOperator(task_id="soak_send", **kwargs)


def assert_exactly_once(handle: SandboxHandle, result: list[dict[str, Any]], recipients: list[str]) -> None:
    counts = handle.sandbox.per_recipient()
    missing = [r for r in recipients if counts[r] == 0]
    duplicated = {r: c for r, c in counts.items() if c > 1}
    assert missing == [], f"{len(missing)} lost"
    assert duplicated == {}, f"{len(duplicated)} duplicated"
    assert set(counts) == set(recipients)
    ids = {m.recipient.e164: m.id for m in handle.sandbox.accepted()}
    assert [r["recipient"] for r in result] == recipients  # each once, in order
    assert {r["recipient"]: r["id"] for r in result} == ids  # the sandbox's own ids


def execute_deferring(op: SmsSendOperator, ctx: dict[str, Any]) -> Any:
    """``execute()``, and when the task defers, its trigger run here (as the triggerer would) and the
    task resumed with the event, until it returns or raises."""
    from airflow_provider_smsww.compat import TaskDeferred

    try:
        return op.execute(ctx)
    except TaskDeferred as deferred:
        while True:
            event = asyncio.run(_first_event(deferred.trigger))
            try:
                return getattr(op, deferred.method_name)(ctx, event)
            except TaskDeferred as again:
                deferred = again


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def run_until_done(
    op: SmsSendOperator, store: FakeStore, tap: SendTap, handle: SandboxHandle, first_try: int, max_tries: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Retry the task like Airflow would until it succeeds; every retry sends only what is missing."""
    errors: list[str] = []
    for try_number in range(first_try, first_try + max_tries):
        tap.try_number = try_number
        before = handle.sandbox.per_recipient()
        try:
            return execute_deferring(op, context(store, try_number=try_number)), errors
        except SmsWwError as exc:
            errors.append(str(exc))
        finally:
            resent = [r for dry, r in tap.of_try(try_number) if not dry and before[r]]
            assert resent == [], f"try {try_number} resent to recipients already accepted: {resent[:5]}"
        # The designed ways to give up: outcomes unknown after the rounds of one try, or a request
        # still refused (429, 5xx) after the client's 12 retries: with about 4 in 10 requests faulted,
        # 1 request in 30,000 is, and a retried soak makes thousands. Nothing else.
        assert re.search(r"outcome unknown \(|answered (429|5\d\d)", errors[-1]), errors[-1]
    raise AssertionError(f"not done after {max_tries} further tries: {errors}")


@pytest.mark.timing
def test_soak_1000_sends_with_faults_a_crash_and_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_smsww")
    caplog.set_level(logging.ERROR, logger="asyncio")
    started = time.monotonic()
    with run_sandbox(faults=SOAK_FAULTS, credit=100_000, seed=7) as handle:
        use(monkeypatch, handle)
        tap = SendTap(handle)
        reconciles = ReconcileTap(monkeypatch)
        # Write #1 marks the batch start, #2.. record groups of accepted ids (at most 25 each, one per
        # slot): crash while recording the 30th group, somewhere between 30 and 750 acceptances in.
        store = FakeStore(fail_on_set=31)
        op = operator()

        tap.try_number = 1
        with pytest.raises(RuntimeError, match="worker crashed"):
            op.execute(context(store))
        first = tap.of_try(1)
        # The gate ran to completion under faults before the first real send: no real send in the gate.
        first_real = next(i for i, (dry, _) in enumerate(first) if not dry)
        assert {r for dry, r in first[:first_real] if dry} == set(RECIPIENTS)
        assert all(not dry for dry, _ in first[first_real:])
        accepted_at_crash = len(handle.sandbox.accepted())
        recorded_at_crash = len(store.recorded())
        assert 0 < accepted_at_crash < N
        assert handle.sandbox.per_recipient().most_common(1)[0][1] == 1
        # The worst window happened: the gateway holds messages the ledger does not.
        assert accepted_at_crash > recorded_at_crash
        store.fail_on_set = None
        # A send cancelled by the crash may still land on the server a moment later: count what the
        # gateway holds when the retry starts to look (that is what the retry must find).
        time.sleep(0.2)
        accepted_at_retry = len(handle.sandbox.accepted())

        result, errors = run_until_done(op, store, tap, handle, first_try=2, max_tries=8)
        elapsed = time.monotonic() - started

        assert_exactly_once(handle, result, RECIPIENTS)
        faults = Counter(r.fault.split(",")[0] for r in handle.faults.log if r.fault != "latency=0.001")
        statuses = Counter(status for _, _, status in handle.sandbox.requests)
        retries = sum(1 for r in caplog.records if "; retry " in r.getMessage())
        real_sends = sum(1 for _, dry, _ in tap.calls if not dry)
        dry_runs = sum(1 for _, dry, _ in tap.calls if dry)
        # Every kind of fault was exercised, on sends and on reads.
        assert {"503", "503-after", "429=0.01", "drop-before", "drop-after"} <= set(faults)
        assert any(path == "/messages" for _, path, status in handle.sandbox.requests if status in (0, 503))
        # The crash retry found the accepted-but-unrecorded messages in GET /messages.
        assert reconciles.calls
        assert reconciles.calls[0] == (N - recorded_at_crash, accepted_at_retry - recorded_at_crash)
        summary = {
            "elapsed_s": round(elapsed, 1),
            "tries": 1 + len(errors) + 1,
            "gave_up_tries": len(errors),
            "faults": dict(faults),
            "responses": dict(statuses),
            "client_retries_logged": retries,
            "dry_runs_processed": dry_runs,
            "real_sends_processed": real_sends,
            "accepted": len(handle.sandbox.accepted()),
            "accepted_at_crash": accepted_at_crash,
            "recorded_at_crash": recorded_at_crash,
            "reconciliations(asked,found)": reconciles.calls,
        }
        print("\nSOAK", json.dumps(summary))
        assert elapsed < 120
    # Nothing asyncio had to report, e.g. a "Future exception was never retrieved" from the ledger
    # after the crash cancelled the callers of its failed writes.
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_gate_under_faults_never_sends_and_does_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """dry_run=True under the same fault mix: every recipient priced, the batch passes, nothing sent."""
    with run_sandbox(faults=SOAK_FAULTS, credit=100_000) as handle:
        use(monkeypatch, handle)
        estimate = operator(recipients=RECIPIENTS[:300], dry_run=True).execute(context(FakeStore()))
        assert estimate["dry_run"] is True
        assert len(estimate["recipients"]) == 300
        assert handle.sandbox.accepted() == []
        assert handle.sandbox.charges == []
        assert handle.sandbox.dry_runs >= 300
        faults = Counter(r.fault.split(",")[0] for r in handle.faults.log)
        assert faults["503"] + faults["503-after"] + faults["429=0.01"] + faults["drop-before"] > 0


@pytest.mark.parametrize("deferrable", [False, True], ids=["settle in the worker", "deferrable"])
def test_in_process_soak_with_crash_and_retry(monkeypatch: pytest.MonkeyPatch, deferrable: bool) -> None:
    """A smaller variant without a socket (the in-process transport turns drops into protocol errors);
    deferrable, the unknown outcomes settle in the trigger and the resumed task sends the rest."""
    recipients = RECIPIENTS[:200]
    with in_process_sandbox(faults=SOAK_FAULTS, credit=100_000) as box:
        use(monkeypatch, box)
        # The hook builds its own client: route it to the in-process app (no socket).
        monkeypatch.setattr(
            "airflow_provider_smsww._http.client.AsyncSmsWwClient",
            functools.partial(AsyncSmsWwClient, transport=box.async_transport),
        )
        tap = SendTap(box)
        store = FakeStore(fail_on_set=11)  # the 10th group of at most 10 ids: mid-batch
        op = operator(recipients=recipients, max_concurrency=10, deferrable=deferrable)
        tap.try_number = 1
        with pytest.raises(RuntimeError, match="worker crashed"):
            op.execute(context(store))
        store.fail_on_set = None
        result, _ = run_until_done(op, store, tap, box, first_try=2, max_tries=8)
        assert_exactly_once(box, result, recipients)


def test_accepted_but_unrecorded_is_reconciled_not_resent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented window: the gateway accepted message k but the worker died before recording it.
    The retry finds it in GET /messages (same recipient, text, sender, since the batch started) and
    does not send it again; the ones never sent are sent once."""
    recipients = RECIPIENTS[:10]
    with run_sandbox(credit=1000) as handle:
        use(monkeypatch, handle)
        tap = SendTap(handle)
        store = FakeStore(fail_on_set=6)  # #1 started_at, #2-#5 recorded, #6: the 5th acceptance
        op = operator(recipients=recipients, max_concurrency=1, gate=False)
        tap.try_number = 1
        with pytest.raises(RuntimeError, match="worker crashed"):
            op.execute(context(store))
        assert len(handle.sandbox.accepted()) == 5
        assert len(store.recorded()) == 4
        unrecorded = recipients[4]
        assert unrecorded not in store.recorded()
        store.fail_on_set = None
        handle.sandbox.requests.clear()

        tap.try_number = 2
        result = op.execute(context(store, try_number=2))

        sent_on_retry = [r for dry, r in tap.of_try(2) if not dry]
        assert sent_on_retry == recipients[5:]
        assert ("GET", "/messages", 200) in handle.sandbox.requests
        assert store.recorded()[unrecorded]["id"] == result[4]["id"]
        assert_exactly_once(handle, result, recipients)


def test_reconcile_ignores_other_texts_and_earlier_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconciliation matches only this batch: a message to the same number with another text, or
    created long before the batch started, is not taken for ours (so ours is sent, once)."""
    recipients = RECIPIENTS[:3]
    wall = [datetime(2026, 1, 1, tzinfo=UTC)]
    with run_sandbox(credit=1000, wall_clock=lambda: wall[0]) as handle:
        use(monkeypatch, handle)
        # An older send of the same text (an earlier run) and a same-time send of another text.
        operator(recipients=recipients[:1], gate=False).execute(context(FakeStore()))
        wall[0] += timedelta(hours=1)
        operator(recipients=recipients[1:2], message="Another text", gate=False).execute(context(FakeStore()))
        store = FakeStore()
        store.data["smsww:started_at"] = (wall[0] - timedelta(seconds=1)).isoformat()
        result = operator(recipients=recipients, gate=False).execute(context(store, try_number=2))
        ours = [m for m in handle.sandbox.accepted() if m.text == TEXT]
        assert Counter(m.recipient.e164 for m in ours) == {r: 1 for r in recipients} | {recipients[0]: 2}
        assert [r["recipient"] for r in result] == recipients


def test_without_a_task_state_store_a_retry_reconciles_since_the_run_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Older Airflow (no task_state_store): try 2 reconciles against GET /messages since the DAG run
    started, so what try 1 sent is not sent again."""
    recipients = RECIPIENTS[:6]

    class DagRun:
        start_date = datetime.now(UTC) - timedelta(seconds=5)

    with run_sandbox(credit=1000) as handle:
        use(monkeypatch, handle)
        handle.faults.inject("503", "503", "503", path="/WW-messages")  # try 1: three unknown outcomes
        tap = SendTap(handle)
        op = operator(recipients=recipients, max_concurrency=1, gate=False)
        tap.try_number = 1
        # 503 before processing: not stored, but the client cannot know; the worker dies before it
        # could look them up (issue 12 item 4: a try settles unknown outcomes itself before it ends).
        with monkeypatch.context() as crash:
            crash.setattr(bulk_module, "reconcile", _crash)
            with pytest.raises(RuntimeError, match="worker crashed"):
                op.execute(context(None, dag_run=DagRun()))
        unknown = [r for r in recipients if handle.sandbox.per_recipient()[r] == 0]
        assert len(unknown) == 3
        assert handle.sandbox.per_recipient() == {r: 1 for r in recipients if r not in unknown}
        tap.try_number = 2
        again = op.execute(context(None, try_number=2, dag_run=DagRun()))
        # Try 2 found the three accepted ones in GET /messages and sent only the other three.
        assert sorted(r for dry, r in tap.of_try(2) if not dry) == sorted(unknown)
        assert_exactly_once(handle, again, recipients)


async def test_uncertain_send_older_than_the_scan_limit_is_found_not_resent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Uncertain sends are reconciled after the whole round, newest first. In a batch larger than
    ``scan_limit`` an early uncertain send lies deeper than ``scan_limit`` messages: a scan of
    ``scan_limit`` alone would not find it and would send it again, a duplicate. So the scan covers the
    batch's own messages plus ``scan_limit``."""
    recipients = RECIPIENTS[:30]
    with in_process_sandbox(credit=1000) as box:
        # The first send is processed and stored, then answered 503: its outcome is unknown.
        box.faults.inject("503-after", path="/WW-messages", method="POST")
        use(monkeypatch, box)
        monkeypatch.setattr(
            "airflow_provider_smsww._http.client.AsyncSmsWwClient",
            functools.partial(AsyncSmsWwClient, transport=box.async_transport),
        )
        hook = SmsWwHook()
        try:
            report = await bulk_module.send_all(
                hook,
                check_locally(recipients, TEXT),
                MemoryLedger(),
                now=lambda: datetime.now(UTC),
                concurrency=1,
                scan_limit=10,
            )
        finally:
            await hook.aclose()
        assert report.failures == {}
        assert box.sandbox.per_recipient() == {r: 1 for r in recipients}
        assert [r["recipient"] for r in report.records] == recipients
