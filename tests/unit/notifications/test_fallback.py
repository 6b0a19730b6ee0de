"""SmsWwNotifier never loses an alert: template fallbacks, the fallback text, a gateway that ignores
dryRun (issue 12 item 1), and the storm guard as the notifier uses it (pytest-httpx mocks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.notifications import storm_guard
from airflow_provider_smsww.notifications.fallback import fallback_text, fit_one_part
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.segments import analyse
from tests.airflow_versions import needs_deadline_alerts
from tests.fakes import FakeGateway
from tests.unit.notifications.test_storm_guard import MemoryStore

ON_CALL = ["+393331234567", "+393331234568"]
BACKUP = "+447400123456"
FORBIDDEN = "casino"  # a word the tests that need it make the gateway refuse (422 code 2044)


class TI:
    def __init__(self, task_id: str = "load_warehouse", state: str = "failed", try_number: int = 2) -> None:
        self.task_id = task_id
        self.state = state
        self.try_number = try_number
        self.dag_id = "etl"


def task_context(run_id: str = "manual__2025-06-01T14:02:00+00:00", **extra: Any) -> dict[str, Any]:
    """A task failure callback's context in a run without a logical date: no ``ds``."""
    exc = RuntimeError("warehouse refused 42 rows\nTraceback details that do not belong in an SMS")
    return {"dag": DAG(dag_id="etl", schedule=None), "ti": TI(), "run_id": run_id, "exception": exc, **extra}


FALLBACK = (
    "Airflow FAILED: etl.load_warehouse try 2: RuntimeError: warehouse refused 42 rows. "
    "Run manual__2025-06-01T14:02:00+00:00"
)


def alert(**kwargs: Any) -> SmsWwNotifier:
    kwargs.setdefault("recipients", ON_CALL)
    kwargs.setdefault("message", "FAILED {{ dag.dag_id }}.{{ ti.task_id }} on {{ ds }}")
    return SmsWwNotifier(**kwargs)


@pytest.mark.parametrize(
    "text",
    ["a" * 200, "€" * 100, "é€" * 100, "ü" * 70 + "😀" * 40, "Ж" * 71, "short"],
)
def test_fit_one_part_always_fits_one_part(text: str) -> None:
    fitted = fit_one_part(text)
    assert analyse(fitted).parts == 1
    if analyse(text).parts == 1:
        assert fitted == text
    else:
        assert fitted.endswith("...")
        assert "\ud83d" not in fitted  # no half of a surrogate pair


# -- templates that cannot render ---------------------------------------------------------------------


def test_an_unrenderable_message_sends_the_fallback_once_to_each(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    alert()(task_context())
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL  # exactly one SMS each
    assert {b["message"] for b in gateway.bodies} == {FALLBACK}
    out = capsys.readouterr().out
    assert "the message template failed to render (UndefinedError: 'ds' is undefined)" in out


def test_the_fallback_text_fits_one_part_and_masks_secrets() -> None:
    from airflow_provider_smsww.compat import mask_secret

    mask_secret("hunter2-very-secret")
    exc = RuntimeError("login failed with hunter2-very-secret " + "x" * 300)
    text = fallback_text(task_context(exception=exc))
    assert analyse(text).parts == 1
    assert "hunter2-very-secret" not in text
    assert text.startswith("Airflow FAILED: etl.load_warehouse try 2: RuntimeError: login failed with ***")


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {
                "dag": DAG(dag_id="etl", schedule=None),
                "run_id": "scheduled__2025-06-01T00:00:00+00:00",
                "reason": "task_failure",
                "ti": TI(),
            },
            "Airflow FAILED: DAG etl (task_failure), last task load_warehouse. "
            "Run scheduled__2025-06-01T00:00:00+00:00",
            id="dag-level",
        ),
        pytest.param(
            {
                "dag": DAG(dag_id="etl", schedule=None),
                "run_id": "asset_triggered__2025",
                "reason": "task_failure",
            },
            "Airflow FAILED: DAG etl (task_failure). Run asset_triggered__2025",
            id="dag-level-minimal",
        ),
        pytest.param(
            {
                "dag_run": {"dag_id": "etl", "run_id": "backfill__2025-06-01"},
                "deadline": {"deadline_time": "2025-06-01T06:00:00+00:00"},
            },
            "Airflow DEADLINE MISSED: DAG etl (deadline 2025-06-01T06:00:00+00:00). Run backfill__2025-06-01",
            id="deadline",
        ),
        pytest.param({}, "Airflow ALERT: unknown DAG", id="empty"),
    ],
)
def test_the_fallback_text_for_every_caller(context: dict[str, Any], expected: str) -> None:
    assert fallback_text(context) == expected


def test_a_list_item_that_fails_leaves_the_others(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    alert(recipients=[ON_CALL[0], "{{ var.value.nope }}"], message="FAILED {{ dag.dag_id }}")(task_context())
    assert [(b["recipient"], b["message"]) for b in gateway.bodies] == [(ON_CALL[0], "FAILED etl")]
    assert "the recipients[1] template failed to render" in capsys.readouterr().out


def test_recipients_that_fail_go_to_the_fallback_recipients(gateway: FakeGateway) -> None:
    alert(recipients="{{ params.oncall }}", fallback_recipients=[BACKUP])(task_context())
    assert [(b["recipient"], b["message"]) for b in gateway.bodies] == [(BACKUP, FALLBACK)]


def test_recipients_that_fail_without_a_fallback_say_why(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwError, match=r"no recipients given \(the recipients template failed to render"):
        alert(recipients="{{ params.oncall }}")(task_context())
    assert httpx_mock.get_requests() == []


def test_a_sender_that_fails_uses_the_default_sender(gateway: FakeGateway) -> None:
    alert(sender="{{ params.alias }}", message="FAILED {{ dag.dag_id }}")(task_context())
    assert [(b.get("sender"), b["message"]) for b in gateway.bodies] == [(None, "FAILED etl")] * 2


def test_an_empty_text_sends_the_fallback(gateway: FakeGateway) -> None:
    alert(message="{{ params.get('text', '') }}")(task_context(params={}))
    assert {b["message"] for b in gateway.bodies} == {FALLBACK}


def test_a_text_the_dry_run_refuses_falls_back(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.forbidden.add(FORBIDDEN)
    alert(message=f"FAILED {{{{ dag.dag_id }}}}: {FORBIDDEN} feed down")(task_context())
    assert [b["message"] for b in gateway.bodies] == [FALLBACK, FALLBACK]
    assert len(gateway.dry_runs) == 1  # the fallback's; the refused one is not stored
    out = capsys.readouterr().out
    assert "dry run refused the rendered text or sender" in out
    assert "Forbidden content" in out


def test_a_fallback_the_dry_run_refuses_too_sends_nothing(gateway: FakeGateway) -> None:
    gateway.forbidden.add(FORBIDDEN)
    ctx = task_context(exception=RuntimeError(f"{FORBIDDEN} table locked"))
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*refused the dry run"):
        alert(message=f"{FORBIDDEN}")(ctx)
    assert gateway.bodies == []


# -- a gateway that ignores dryRun (issue 12 item 1) --------------------------------------------------


def test_a_dry_run_answered_as_a_real_send_reports_that_recipient_as_sent(
    gateway: FakeGateway, httpx_mock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.dry_run_echo = False
    with pytest.raises(SmsWwError, match=r"(?s)1 of 2 recipient\(s\).*ignored the dry run") as info:
        alert(message="FAILED {{ dag.dag_id }}")(task_context())
    assert len(httpx_mock.get_requests()) == 1  # the "dry run" was the one SMS: nothing more is sent
    assert [b["recipient"] for b in gateway.bodies] == [ON_CALL[0]]
    assert f"  - {ON_CALL[1]}: not sent: the gateway ignored the dry run" in str(info.value)
    assert f"  - {ON_CALL[0]}:" not in str(info.value)  # it got the alert: not a failure
    out = capsys.readouterr().out
    assert "sent to nobody" not in out
    assert re.search(rf"SMS alert sent to \{ON_CALL[0]} \(message id 0+1\)", out)
    assert "came back as a REAL send" in out


async def test_the_same_in_a_deadline_alert(gateway: FakeGateway, httpx_mock: Any) -> None:
    gateway.dry_run_echo = False
    n = alert(message="LATE {{ dag_run.dag_id }}", raise_on_failure=False)
    await n.async_notify({"dag_run": {"dag_id": "etl", "run_id": "r"}})
    assert len(httpx_mock.get_requests()) == 1


# -- the storm guard through the notifier -------------------------------------------------------------


class Clock:
    """Today at noon, so that the 16 minutes a test moves it on never cross midnight (the "since" of the
    next alert then names its date)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    def __call__(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    memory = MemoryStore()
    monkeypatch.setattr(storm_guard, "default_store", lambda: memory)
    monkeypatch.setattr(storm_guard, "SETTLE_SECONDS", 0)
    return memory


def test_eight_failing_tasks_send_one_then_the_next_counts_seven(
    gateway: FakeGateway, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(storm_guard, "now", clock)
    shared = alert(recipients=ON_CALL[:1], message="FAILED {{ ti.task_id }}", cooldown=timedelta(minutes=15))
    first_at = clock.at
    for n in range(8):
        ti = TI(task_id=f"load_{n}")
        shared(task_context(ti=ti))
    assert [b["message"] for b in gateway.bodies] == ["FAILED load_0"]

    clock.at += timedelta(minutes=16)
    shared(task_context(ti=TI(task_id="load_8")))
    since = first_at.strftime("%H:%M UTC")
    assert [b["message"] for b in gateway.bodies] == [
        "FAILED load_0",
        f"(+7 more failures since {since}) FAILED load_8",
    ]


def test_a_dedupe_key_that_fails_to_render_groups_by_dag(
    gateway: FakeGateway,
    store: MemoryStore,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    n = alert(recipients=ON_CALL[:1], cooldown=timedelta(minutes=5), dedupe_key="{{ params.team }}")
    n(task_context())
    n(task_context())
    assert len(gateway.bodies) == 1  # the alert still went out, and the second was held under "etl"
    assert any(k.startswith(storm_guard.variable_prefix("etl")) for k in store.data)
    assert "dedupe_key '{{ params.team }}' failed" in caplog.text + capsys.readouterr().out


def test_without_the_airflow_runtime_the_guard_lets_alerts_through(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(storm_guard, "SETTLE_SECONDS", 0)
    n = alert(recipients=ON_CALL[:1], message="FAILED", cooldown=timedelta(minutes=5))
    n(task_context())
    n(task_context())
    assert len(gateway.bodies) == 2  # no Variables to be had here: fail open, never lose an alert
    assert "storm guard unavailable" in caplog.text


def test_no_cooldown_keeps_every_alert(gateway: FakeGateway) -> None:
    n = alert(recipients=ON_CALL[:1], message="FAILED")
    for _ in range(3):
        n(task_context())
    assert len(gateway.bodies) == 3


@needs_deadline_alerts
async def test_deadline_alerts_share_the_storm_guard(gateway: FakeGateway, store: MemoryStore) -> None:
    # The triggerer's context has no `dag`: the default key falls back to dag_run's DAG id, silently.
    n = alert(recipients=ON_CALL[:1], message="LATE {{ dag_run.dag_id }}", cooldown=timedelta(minutes=5))
    context: Any = {"dag_run": {"dag_id": "etl", "run_id": "r"}}
    for _ in range(3):
        n.render_template_fields(context)
        await n.async_notify(context)
    assert [b["message"] for b in gateway.bodies] == ["LATE etl"]
    assert all(k.startswith(storm_guard.variable_prefix("etl")) for k in store.data)
