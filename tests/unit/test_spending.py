"""Money: credit pre-flight, the per-task capped token, budget inputs, cost reporting and metrics,
against pytest-httpx mocks of the SMS API and of OAuth v2 (``GET /wallet``, ``POST``/``DELETE
/tokens``)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.compat import AirflowFailException
from airflow_provider_smsww.exceptions import (
    SmsWwError,
    SmsWwInsufficientCreditError,
    SmsWwSpendingCapError,
)
from airflow_provider_smsww.hooks import money as money_module
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.smsww import SmsSendOperator, SmsWwSpendingCapReachedError
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from tests.airflow_versions import log_level, task_log_lines
from tests.fakes import (
    API,
    IDS,
    TOKEN,
    FakeGateway,
    FakeMessages,
    FakeStore,
    StatsRecorder,
    XComTI,
    recorded_metrics,
    set_connection,
    task_context,
)

OAUTH = "https://oauth.example.test"

MINTED = "pertask0minted0token0abc"
EMAIL = "ops@example.test"
API_KEY = "money-api-key-SECRET-42"
BASIC = "Basic " + base64.b64encode(f"{EMAIL}:{API_KEY}".encode()).decode()
ITALIAN = [f"+39333{n:07d}" for n in range(1_000_100, 1_000_140)]  # 40 numbers


@pytest.fixture(autouse=True)
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A static token for the SMS API plus the account email and API key: credit and caps work."""
    extra = {"max_retries": 0, "api_key": API_KEY, "oauth_host": OAUTH}
    set_connection(monkeypatch, host=API, password=TOKEN, login=EMAIL, extra=extra)
    monkeypatch.setattr(money_module, "mask_secret", lambda secret: None)


def set_token_only_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The static token alone, without the account's email and API key: no credit, no gateway cap."""
    set_connection(monkeypatch, host=API, password=TOKEN, extra={"max_retries": 0})


class Account:
    """OAuth v2 for one account: the wallet, minted tokens (with their limits) and revocations."""

    def __init__(self, credit: float = 100.0) -> None:
        self.credit = credit
        self.mints: list[dict[str, Any]] = []
        self.revoked: list[str] = []
        self.wallet_reads = 0
        self.wallet_status = 200

    def limits(self) -> dict[str, Any]:
        return self.mints[-1]["limits"] if self.mints else {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == BASIC
        path = request.url.path
        if request.method == "GET" and path == "/wallet":
            self.wallet_reads += 1
            if self.wallet_status != 200:
                return httpx.Response(
                    self.wallet_status, json={"success": False, "message": "down", "error": 1}
                )
            now = datetime.now(UTC).isoformat()
            return httpx.Response(
                200, json={"data": {"credit": self.credit, "createdAt": now, "updatedAt": now}}
            )
        if request.method == "POST" and path == "/tokens":
            body = json.loads(request.content)
            self.mints.append(body)
            expire = (datetime.now(UTC) + timedelta(seconds=body["ttl"])).isoformat()
            return httpx.Response(
                200,
                json={
                    "token": MINTED,
                    "expireAt": expire,
                    "scopes": body["scopes"],
                    "limits": body["limits"],
                },
            )
        if request.method == "DELETE" and path == f"/tokens/{MINTED}":
            self.revoked.append(MINTED)
            return httpx.Response(200, json={"message": "Deleted", "data": None})
        return httpx.Response(404, json={"success": False, "message": "Not Found", "error": 180})


@pytest.fixture
def account(httpx_mock: Any) -> Account:
    fake = Account()
    httpx_mock.add_callback(fake, url=re.compile(f"^{OAUTH}/"), is_reusable=True, is_optional=True)
    return fake


@pytest.fixture
def capped_gateway(httpx_mock: Any, account: Account) -> FakeGateway:
    """The unit tests' fake SMS API with a per-task cap: dry runs with the connection's token; real sends
    only with the per-task token, refused with 402 code 2035 once its ``walletAmount`` would be passed
    (as the sandbox does)."""
    fake = FakeGateway()
    fake.send_token = MINTED
    fake.wallet_cap = lambda: account.limits().get("walletAmount")
    httpx_mock.add_callback(fake, url=re.compile(f"^{API}/"), is_reusable=True, is_optional=True)
    return fake


@pytest.fixture
def metrics() -> Iterator[StatsRecorder]:
    with recorded_metrics() as recorder:
        yield recorder


def op(**kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("recipients", ITALIAN[:3])
    kwargs.setdefault("message", "Report ready")
    kwargs.setdefault("max_concurrency", 1)
    return SmsSendOperator(task_id="send", **kwargs)


# -- the hook: credit ---------------------------------------------------------------------------------


def test_get_credit_reads_the_wallet_with_basic_auth(account: Account) -> None:
    account.credit = 12.5
    hook = SmsWwHook()
    assert hook.get_credit() == Decimal("12.5")
    assert account.wallet_reads == 1


async def test_aget_credit_reads_the_wallet_with_basic_auth(account: Account) -> None:
    account.credit = 7.25
    hook = SmsWwHook()
    try:
        assert await hook.aget_credit() == Decimal("7.25")
    finally:
        await hook.aclose()


def test_token_only_connection_has_no_credit_and_says_how_once(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    set_token_only_connection(monkeypatch)
    hook = SmsWwHook()
    assert hook.get_credit() is None
    assert hook.get_credit() is None
    notes = [line for line in capsys.readouterr().out.splitlines() if "token-only" in line]
    assert len(notes) == 1
    assert log_level(notes[0]) == "info"
    assert "no credit check, no gateway spending cap (docs/money.md)" in notes[0]
    assert httpx_mock.get_requests() == []


def test_wallet_refusal_names_the_call_and_the_credentials(account: Account) -> None:
    account.wallet_status = 401
    with pytest.raises(SmsWwError, match=r"GET /wallet.*api_key"):
        SmsWwHook().get_credit()


# -- the hook: the per-task token ---------------------------------------------------------------------


async def test_scoped_mints_a_limited_token_for_the_send_paths_and_revokes_it(
    account: Account, capped_gateway: FakeGateway
) -> None:
    hook = SmsWwHook()
    async with hook.scoped(budget=1.5, requests=3, region="WW", ttl=600) as capped:
        assert capped is not hook
        message = await capped.asend_message(ITALIAN[0], "hello")
        assert account.revoked == []
    assert message.id
    assert capped_gateway.sent_to() == [ITALIAN[0]]
    (mint,) = account.mints
    assert mint["limits"] == {"walletAmount": 1.5, "walletRequests": 3}
    assert mint["ttl"] == 600
    assert mint["scopes"] == [
        "POST:sms.example.test/WW-messages",
        "GET:sms.example.test/messages",
        "GET:sms.example.test/messages/*",
    ]
    assert account.revoked == [MINTED]
    await hook.aclose()


async def test_scoped_token_is_revoked_when_the_block_fails(
    account: Account, capped_gateway: FakeGateway
) -> None:
    hook = SmsWwHook()
    with pytest.raises(RuntimeError):
        async with hook.scoped(budget=1.0):
            raise RuntimeError("boom")
    assert account.revoked == [MINTED]
    await hook.aclose()


async def test_scoped_with_a_token_only_connection_yields_the_hook_itself(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    set_token_only_connection(monkeypatch)
    hook = SmsWwHook()
    async with hook.scoped(budget=1.0) as capped:
        assert capped is hook
    assert httpx_mock.get_requests() == []
    await hook.aclose()


async def test_a_spent_cap_is_a_spending_cap_error(account: Account, capped_gateway: FakeGateway) -> None:
    capped_gateway.real_price = 0.6
    hook = SmsWwHook()
    async with hook.scoped(budget=1.0) as capped:
        await capped.asend_message(ITALIAN[0], "hello")
        with pytest.raises(SmsWwSpendingCapError, match="2035") as info:
            await capped.asend_message(ITALIAN[1], "hello")
    assert isinstance(info.value, SmsWwInsufficientCreditError)  # fatal for bulk sends and alerts alike
    assert capped_gateway.sent_to() == [ITALIAN[0]]
    await hook.aclose()


# -- budget inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_total_price", "price_per_part_if_unknown"])
@pytest.mark.parametrize("bad", [-1, 0, 0.0, -0.5, float("nan"), float("inf"), True, False, "5"])
def test_budget_inputs_must_be_positive_finite_numbers(name: str, bad: Any, httpx_mock: Any) -> None:
    with pytest.raises(ValueError, match=name):
        op(**{name: bad, "max_total_price": 5.0} if name != "max_total_price" else {name: bad})
    assert httpx_mock.get_requests() == []


def test_zero_price_no_longer_lets_a_batch_through_the_budget() -> None:
    # The measured hole: price_per_part_if_unknown=0 let 10 of 10 through max_total_price=0.5.
    with pytest.raises(ValueError, match="price_per_part_if_unknown must be a positive number"):
        op(max_total_price=0.5, price_per_part_if_unknown=0)


# -- credit pre-flight --------------------------------------------------------------------------------


def test_credit_short_for_40_unpriced_italians_sends_nothing(
    account: Account, capped_gateway: FakeGateway
) -> None:
    account.credit, capped_gateway.price = 2.0, 0.0  # worldwide dry runs come back unpriced
    with pytest.raises(SmsWwInsufficientCreditError) as info:
        op(recipients=ITALIAN, max_concurrency=10).execute(task_context(FakeStore()))
    text = str(info.value)
    assert "credit 2.00 EUR" in text
    assert "needed 41.00 EUR" in text  # 40 parts at 1 EUR (unpriced) + 1 EUR on hand for the last
    assert "shortfall 39.00 EUR" in text
    assert "nothing was sent" in text
    assert capped_gateway.sent_to() == []
    assert account.mints == []


def test_credit_short_with_an_assumed_price_names_estimate_and_shortfall(
    account: Account, capped_gateway: FakeGateway
) -> None:
    account.credit, capped_gateway.price = 2.0, 0.0
    with pytest.raises(SmsWwInsufficientCreditError) as info:
        op(recipients=ITALIAN, price_per_part_if_unknown=0.065, max_concurrency=10).execute(
            task_context(FakeStore())
        )
    text = str(info.value)
    assert "estimated total 2.60 EUR" in text
    assert "needed 3.60 EUR" in text
    assert "shortfall 1.60 EUR" in text
    assert capped_gateway.sent_to() == []


def test_priced_batch_needs_its_total_plus_one_eur_per_part_of_the_last(
    account: Account, capped_gateway: FakeGateway
) -> None:
    account.credit = 1.14  # 3 x 0.05 + 1.00 = 1.15 needed
    with pytest.raises(SmsWwInsufficientCreditError, match=r"shortfall 0\.01 EUR"):
        op().execute(task_context(FakeStore()))
    account.credit = 1.15
    assert len(op().execute(task_context(FakeStore()))) == 3


def test_dry_run_only_shows_the_credit(account: Account, capped_gateway: FakeGateway) -> None:
    result = op(dry_run=True).execute(task_context(FakeStore()))
    assert result["credit"] == 100.0
    assert result["estimated_total_price"] == pytest.approx(0.15)
    assert capped_gateway.sent_to() == []
    assert account.mints == []


# -- the cap the gateway enforces ---------------------------------------------------------------------


def test_sends_use_a_capped_token_that_is_revoked(account: Account, capped_gateway: FakeGateway) -> None:
    records = op(max_total_price=1.0).execute(task_context(FakeStore()))
    assert [r["recipient"] for r in records] == ITALIAN[:3]
    assert account.mints[0]["limits"] == {"walletAmount": 1.0, "walletRequests": 3}
    assert account.revoked == [MINTED]


def test_the_cap_stops_a_batch_whose_real_prices_exceed_the_budget(
    account: Account, capped_gateway: FakeGateway
) -> None:
    capped_gateway.price, capped_gateway.real_price = 0.01, 0.10  # the price changed after the dry run
    recipients = ITALIAN[:5]
    with pytest.raises(SmsWwSpendingCapReachedError) as info:
        op(recipients=recipients, max_total_price=0.25).execute(task_context(FakeStore()))
    assert isinstance(info.value, AirflowFailException)  # no retry: a retry would get a fresh cap
    assert capped_gateway.sent_to() == recipients[:2]
    assert capped_gateway.spent <= Decimal("0.25")
    text = str(info.value)
    assert "2 of 5 message(s) accepted; 3 failed" in text
    assert all(r in text for r in recipients[2:])  # who was not sent
    assert "spending cap" in text
    assert account.revoked == [MINTED]


def test_token_is_revoked_when_the_send_fails(
    account: Account, capped_gateway: FakeGateway, httpx_mock: Any
) -> None:
    capped_gateway.real_price = 5.0
    with pytest.raises(SmsWwError):
        op(max_total_price=1.0).execute(task_context(FakeStore()))
    assert account.revoked == [MINTED]


# -- cost reporting and metrics -----------------------------------------------------------------------


def test_cost_in_xcom_last_log_line_and_metrics(
    account: Account,
    capped_gateway: FakeGateway,
    metrics: StatsRecorder,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ti = XComTI()
    records = op(max_total_price=1.0).execute(task_context(FakeStore(), ti=ti))
    assert len(records) == 3  # the return value stays the sensor's list of records
    assert ti.xcom["cost"] == {
        "currency": "EUR",
        "messages": 3,
        "parts": 3,
        "estimated_total_price": pytest.approx(0.15),
        "from_earlier_try": 0,
        "earlier_tries_spent": 0.0,
        "earlier_tries_priced": 0,
        "held_for_unknown_outcomes": 0.0,
        "max_total_price": 1.0,
        "budget_left": 1.0,
        "limit": "gateway_token",
        "credit_before": 100.0,
    }
    ours = [
        line
        for line in task_log_lines(capsys, caplog)
        if "SmsSendOperator" in line and "outside of the Task Runner" not in line  # Airflow 3.0's own
    ]
    assert "Cost: 3 message(s) accepted now" in ours[-1]
    assert "estimated total 0.1500 EUR" in ours[-1]
    tags = {"dag_id": "adhoc_airflow", "task_id": "send"}
    assert sorted(metrics.counts) == sorted(
        [("smsww.sent", 3, tags), ("smsww.parts", 3, tags), ("smsww.cost_estimated_cents", 15, tags)]
    )
    assert sorted(metrics.gauges) == [
        ("smsww.budget_left_cents", 100, tags),
        ("smsww.task_cost_cents", 15, tags),
    ]


def test_failures_are_counted_in_metrics(
    account: Account, capped_gateway: FakeGateway, metrics: StatsRecorder
) -> None:
    capped_gateway.price, capped_gateway.real_price = 0.01, 0.10
    with pytest.raises(SmsWwSpendingCapReachedError):
        op(recipients=ITALIAN[:5], max_total_price=0.25).execute(task_context(FakeStore()))
    counted = {name: count for name, count, _ in metrics.counts}
    assert counted == {"smsww.sent": 2, "smsww.failed": 3, "smsww.parts": 2, "smsww.cost_estimated_cents": 2}


def test_sensor_reports_the_actual_cost(httpx_mock: Any, metrics: StatsRecorder) -> None:
    fake = FakeMessages({i: ["DELIVERED"] for i in IDS})  # totalPrice 0.05 each
    httpx_mock.add_callback(fake, url=re.compile(f"^{API}/"), is_reusable=True)
    ti = XComTI()
    sensor = SmsDeliverySensor(task_id="wait", message_ids=IDS, poke_interval=0, timeout=10, deferrable=False)
    assert len(sensor.execute({"ti": ti, "run_id": "manual__1"})) == 3
    assert ti.xcom["cost"] == {"currency": "EUR", "messages": 3, "parts": 3, "actual_total_price": 0.15}
    assert metrics.counts == [("smsww.cost_actual_cents", 15, {"dag_id": "adhoc_airflow", "task_id": "wait"})]


# -- the notifier: checks, warns, still sends ---------------------------------------------------------


class NotifierTI:
    task_id = "load"
    log_url = "http://airflow.example.test/log"


def alert() -> SmsWwNotifier:
    return SmsWwNotifier(recipients=ITALIAN[:1], message="FAILED {{ ti.task_id }}", sender="Airflow")


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch, httpx_mock: Any, account: Account) -> FakeGateway:
    """The notifier sends with the connection's own token (no per-task cap)."""
    fake = FakeGateway()
    httpx_mock.add_callback(fake, url=re.compile(f"^{API}/"), is_reusable=True, is_optional=True)
    return fake


def test_notifier_warns_loudly_on_low_credit_and_still_sends(
    alerts: FakeGateway, account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.credit = 3.0
    alert()({"ti": NotifierTI(), "run_id": "manual__1"})
    assert alerts.sent_to() == ITALIAN[:1]
    low = [line for line in capsys.readouterr().out.splitlines() if "LOW SMS CREDIT" in line]
    assert len(low) == 1
    assert log_level(low[0]) == "error"
    assert "3.00 EUR" in low[0]


def test_notifier_sends_when_the_credit_cannot_be_read(
    alerts: FakeGateway, account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.wallet_status = 503
    alert()({"ti": NotifierTI(), "run_id": "manual__1"})
    assert alerts.sent_to() == ITALIAN[:1]
    assert "Could not read the SMS account credit" in capsys.readouterr().out


def test_notifier_is_quiet_with_enough_credit(
    alerts: FakeGateway, account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    alert()({"ti": NotifierTI(), "run_id": "manual__1"})
    assert alerts.sent_to() == ITALIAN[:1]
    assert "LOW SMS CREDIT" not in capsys.readouterr().out


def test_a_mapped_operator_checks_its_budget_when_the_dag_is_parsed() -> None:
    from airflow.sdk import DAG

    with DAG("money_parse", schedule=None), pytest.raises(ValueError, match="max_total_price"):
        SmsSendOperator.partial(task_id="send", message="m", max_total_price=float("nan")).expand(
            recipients=[ITALIAN[:2]]
        )


# -- one budget over every try ------------------------------------------------------------------------


def refuse_sends(capped_gateway: FakeGateway, recipients: list[str]) -> None:
    """Refuse the real sends to ``recipients`` with a 422 (nothing stored): the try fails part-way."""
    for r in recipients:
        capped_gateway.fail_sends[r] = httpx.Response(
            422, json={"code": 2011, "message": "Invalid mobile phone number."}
        )


def test_a_retry_is_capped_at_what_the_earlier_tries_left(
    account: Account,
    capped_gateway: FakeGateway,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    capped_gateway.price, capped_gateway.real_price = (
        0.0,
        0.2,
    )  # unpriced dry runs, 0.20 EUR per part once sent
    recipients = ITALIAN[:5]
    store = FakeStore()
    refuse_sends(capped_gateway, recipients[3:])
    with pytest.raises(SmsWwError, match="3 of 5 message"):
        op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.1).execute(
            task_context(store)
        )
    assert account.limits()["walletAmount"] == 1.0  # the first try has the whole budget
    assert {r["price"] for r in store.recorded().values()} == {0.2}  # the real price, for the next try
    assert {r["estimate"] for r in store.recorded().values()} == {0.1}  # and the estimate it was sent at
    capped_gateway.fail_sends.clear()
    capped_gateway.spent = Decimal(0)  # what the next token has spent
    ti = XComTI(try_number=2)
    records = op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.1).execute(
        task_context(store, try_number=2, ti=ti)
    )
    assert [r["recipient"] for r in records] == recipients
    assert all(
        "price" not in r and "estimate" not in r for r in records
    )  # the XCom records stay as they were
    assert account.limits()["walletAmount"] == pytest.approx(0.4)  # 1.0 less the 3 x 0.20 already spent
    cost = ti.xcom["cost"]
    assert cost["from_earlier_try"] == 3
    assert cost["earlier_tries_spent"] == pytest.approx(0.6)
    assert cost["earlier_tries_priced"] == 3
    assert cost["budget_left"] == pytest.approx(0.4)
    assert cost["limit"] == "gateway_token"
    assert any("3 by an earlier try, 0.6000 EUR" in line for line in task_log_lines(capsys, caplog))


def test_a_retry_with_the_budget_spent_fails_for_good_naming_who_was_not_sent(
    account: Account, capped_gateway: FakeGateway
) -> None:
    capped_gateway.price, capped_gateway.real_price = 0.0, 0.3
    recipients = ITALIAN[:5]
    store = FakeStore()
    refuse_sends(capped_gateway, recipients[3:])
    with pytest.raises(SmsWwError):
        op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.05).execute(
            task_context(store)
        )
    capped_gateway.fail_sends.clear()
    mints = len(account.mints)
    # 0.90 spent, 0.10 left: the two remaining recipients' estimate (2 x 0.05) fits, but not the real price.
    with pytest.raises(SmsWwSpendingCapReachedError) as info:
        op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.06).execute(
            task_context(store, try_number=2)
        )
    text = str(info.value)
    assert "max_total_price is spent" in text
    assert all(r in text for r in recipients[3:])
    assert "earlier tries spent 0.9000 EUR" in text
    assert len(account.mints) == mints  # refused before a token was minted
    assert len(capped_gateway.stored) == 3


def test_a_token_only_retry_checks_the_estimate_against_what_is_left(
    monkeypatch: pytest.MonkeyPatch, capped_gateway: FakeGateway
) -> None:
    set_token_only_connection(monkeypatch)  # no account: no gateway cap
    capped_gateway.send_token = TOKEN
    capped_gateway.price, capped_gateway.real_price = 0.0, 0.3
    recipients = ITALIAN[:5]
    store = FakeStore()
    refuse_sends(capped_gateway, recipients[3:])
    with pytest.raises(SmsWwError):
        op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.06).execute(
            task_context(store)
        )
    capped_gateway.fail_sends.clear()
    with pytest.raises(SmsWwSpendingCapReachedError, match="max_total_price is spent"):
        op(recipients=recipients, max_total_price=1.0, price_per_part_if_unknown=0.06).execute(
            task_context(store, try_number=2)
        )
    assert len(capped_gateway.stored) == 3
