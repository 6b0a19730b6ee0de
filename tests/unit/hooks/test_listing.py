"""Reading many messages by listing pages (GET /messages, newest first) and GET by id only for what the
pages do not show: the cost bound, the stopping rules, and the sensor's and trigger's semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.delivery import read_messages
from airflow_provider_smsww.exceptions import SmsWwNotFoundError, SmsWwServerError
from airflow_provider_smsww.hooks.listing import LISTING_MIN_IDS, read_by_listing
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Message
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from airflow_provider_smsww.triggers.smsww import SmsDeliveryTrigger
from tests.fakes import TOKEN

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def mid(n: int) -> str:
    return f"{n:024x}"


class Account:
    """A gateway account with ``n`` messages, ``mid(n-1)`` the newest; ``GET /messages`` lists them
    newest first (``shuffled``: oldest first), ``GET /messages/{id}`` reads one. Counts both."""

    def __init__(self, n: int, state: str = "PENDING", *, shuffled: bool = False) -> None:
        self.state: dict[str, str] = {mid(i): state for i in range(n)}
        self.shuffled = shuffled
        self.pages: list[tuple[int, int]] = []
        self.gets: list[str] = []
        self.fail_pages_from: int | None = None

    def add(self, n: int) -> None:
        """``n`` newer messages, listed before every earlier one."""
        start = len(self.state)
        self.state.update({mid(i): "PENDING" for i in range(start, start + n)})

    def entry(self, message_id: str) -> dict[str, Any]:
        created = T0 + timedelta(seconds=10 * int(message_id, 16))
        return {
            "id": message_id,
            "state": self.state[message_id],
            "recipient": "+393331234567",
            "createdAt": created.isoformat().replace("+00:00", "Z"),
        }

    def listing(self) -> list[str]:
        ids = sorted(self.state, reverse=True)
        if self.shuffled:
            ids.reverse()  # oldest first
        return ids

    async def page(self, skip: int, limit: int) -> list[dict[str, Any]]:
        self.pages.append((skip, limit))
        if self.fail_pages_from is not None and skip >= self.fail_pages_from:
            raise SmsWwServerError("GET /messages answered 503", status_code=503)
        return [self.entry(i) for i in self.listing()[skip : skip + limit]]

    async def get(self, message_id: str) -> Message:
        self.gets.append(message_id)
        if message_id not in self.state:
            raise SmsWwNotFoundError(f"SMS message {message_id} was not found (404)", status_code=404)
        return Message.model_validate(self.entry(message_id))

    @property
    def calls(self) -> int:
        return len(self.pages) + len(self.gets)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """The same account over HTTP, for the hook, sensor and trigger tests."""
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        if request.url.path == "/messages":
            skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
            self.pages.append((skip, limit))
            return httpx.Response(
                200, json={"data": [self.entry(i) for i in self.listing()[skip : skip + limit]]}
            )
        message_id = request.url.path.rsplit("/", 1)[-1]
        self.gets.append(message_id)
        if message_id not in self.state:
            return httpx.Response(404, json={"code": 404, "message": "Message not found"})
        return httpx.Response(200, json={"data": self.entry(message_id)})


async def read(
    account: Account, ids: list[str], into: dict[str, Message] | None = None
) -> dict[str, Message]:
    found: dict[str, Message] = {} if into is None else into
    await read_by_listing(ids, found, fetch_page=account.page, read_one=account.get, max_concurrency=10)
    return found


async def test_1000_newest_messages_cost_10_pages_and_no_get() -> None:
    account = Account(1000)
    ids = [mid(i) for i in range(1000)]
    found = await read(account, ids)
    assert set(found) == set(ids)
    assert all(m.state_name == "PENDING" for m in found.values())
    assert account.gets == []
    assert len(account.pages) == 10
    assert account.calls / len(ids) <= 0.05  # the bound, calls per message per poll


async def test_tracked_messages_among_others_are_found_by_walking_deeper() -> None:
    account = Account(4000)  # 1,000 tracked, every fourth message of the account
    ids = [mid(i) for i in range(0, 4000, 4)]
    found = await read(account, ids)
    assert set(found) == set(ids)
    assert account.gets == []
    assert len(account.pages) <= 41
    assert account.calls / len(ids) <= 0.05


async def test_ids_the_listing_does_not_show_are_read_by_id() -> None:
    account = Account(500)
    ids = [mid(i) for i in range(480, 500)] + [mid(3)]  # mid(3) is on the 5th page: not worth walking
    found = await read(account, ids)
    assert set(found) == set(ids)
    assert account.gets == [mid(3)]
    assert len(account.pages) == 1


async def test_an_id_neither_listed_nor_found_is_a_not_found_error_naming_it() -> None:
    account = Account(50)
    ids = [mid(i) for i in range(40, 50)] + ["ffffffffffffffffffffffff"]
    with pytest.raises(SmsWwNotFoundError, match="ffffffffffffffffffffffff"):
        await read(account, ids)


async def test_a_listing_not_newest_first_stops_the_walk_and_reads_the_rest_by_id() -> None:
    account = Account(1000, shuffled=True)
    ids = [mid(i) for i in range(1000)]
    found = await read(account, ids)
    assert set(found) == set(ids)
    # The first batch of pages is in flight before the order is judged; nothing after it.
    assert len(account.pages) <= 10
    assert len(account.gets) == 1000 - 100


async def test_the_walk_stops_past_the_oldest_tracked_message_known_from_an_earlier_read() -> None:
    account = Account(10_000)
    ids = [mid(i) for i in range(9950, 10_000)] + [mid(9000)]
    known = await read(account, ids)
    account.state.pop(mid(9000))  # gone from the account: the listing must not be walked to the end
    account.pages.clear(), account.gets.clear()
    with pytest.raises(SmsWwNotFoundError, match=mid(9000)):
        await read(account, ids, into=dict(known))
    assert len(account.pages) <= 11
    assert account.gets == [mid(9000)]


async def test_buried_messages_cost_at_most_about_twice_reading_by_id() -> None:
    account = Account(100_000)
    # The account's 50 oldest, under 99,950 newer ones, and the newest: found on the front page, so the
    # walk does not seek, and its budget bounds what it costs.
    ids = [mid(i) for i in range(0, 50)] + [mid(99_999)]
    await read(account, ids)
    assert account.calls <= 2 * len(ids)


async def test_a_batch_under_50000_newer_messages_is_found_by_seeking_not_walking() -> None:
    account = Account(51_000)
    ids = [mid(i) for i in range(0, 1000)]  # an early batch of a campaign: 50,000 sent after it
    known = await read(account, ids)
    assert set(known) == set(ids)
    assert account.gets == [mid(999)]  # the last id given: about the newest of the batch, where to seek
    assert len(account.pages) <= 35  # a walk from the top would read 510
    account.pages.clear(), account.gets.clear()
    account.add(5000)  # the campaign goes on: the batch is 50 pages deeper at the next poll
    again = await read(account, ids, into=dict(known))
    assert set(again) == set(ids)
    assert account.gets == []  # known creation times: no probe
    assert len(account.pages) <= 35
    assert account.calls / len(ids) <= 0.05


async def test_a_seek_never_skips_the_tracked_messages_on_the_front_page() -> None:
    account = Account(3000)
    ids = [mid(i) for i in range(2000, 3000)]
    known = await read(account, ids)
    account.pages.clear()
    await read(account, ids, into=dict(known))
    assert account.gets == []
    assert len(account.pages) == 10  # the seek's first page is the walk's first page


async def test_a_transient_error_keeps_what_was_read_and_counts_as_not_yet(monkeypatch: Any) -> None:
    account = Account(1000)
    account.fail_pages_from = 500
    ids = [mid(i) for i in range(1000)]
    hook = SmsWwHook()
    messages: dict[str, Message] = {}

    async def aget_messages(ids: Any, *, max_concurrency: int, into: Any, by_listing: bool) -> Any:
        assert by_listing
        return await read(account, list(ids), into)

    monkeypatch.setattr(hook, "aget_messages", aget_messages)
    trouble = await read_messages(hook, ids, messages, max_concurrency=10)
    assert isinstance(trouble, SmsWwServerError)
    assert 0 < len(messages) < 1000  # the pages before the error


async def test_the_hook_reads_pages_of_100_over_http(httpx_mock: Any, hook: SmsWwHook) -> None:
    account = Account(250, state="DELIVERED")
    httpx_mock.add_callback(account, is_reusable=True)
    ids = [mid(i) for i in range(250)]
    found = await hook.aget_messages(ids, by_listing=True)
    assert set(found) == set(ids)
    assert found[mid(7)].state_name == "DELIVERED"
    assert sorted(account.pages) == [(0, 100), (100, 100), (200, 100)]
    assert account.gets == []


def test_a_poke_of_many_ids_reads_the_listing(httpx_mock: Any) -> None:
    account = Account(300, state="DELIVERED")
    httpx_mock.add_callback(account, is_reusable=True)
    ids = [mid(i) for i in range(300 - LISTING_MIN_IDS * 3, 300)]
    sensor = SmsDeliverySensor(task_id="wait", message_ids=ids)
    result = sensor.poke({"ti": None})
    assert result.is_done
    assert len(result.xcom_value) == len(ids)
    assert account.pages == [(0, 100)]
    assert account.gets == []


def test_a_poke_of_few_ids_reads_them_by_id(httpx_mock: Any) -> None:
    account = Account(300, state="DELIVERED")
    httpx_mock.add_callback(account, is_reusable=True)
    ids = [mid(i) for i in range(300 - LISTING_MIN_IDS + 1, 300)]
    assert SmsDeliverySensor(task_id="wait", message_ids=ids).poke({"ti": None}).is_done
    assert account.pages == []
    assert sorted(account.gets) == sorted(ids)


async def test_the_trigger_reads_the_listing_each_round(httpx_mock: Any, monkeypatch: Any) -> None:
    import airflow_provider_smsww.triggers.smsww as module

    account = Account(1000)
    httpx_mock.add_callback(account, is_reusable=True)
    ids = [mid(i) for i in range(1000)]
    pages_per_round: list[int] = []

    async def one_round(*args: Any, **kwargs: Any) -> Any:
        trouble = await read_messages(*args, **kwargs)
        pages_per_round.append(len(account.pages))
        account.state = dict.fromkeys(account.state, "DELIVERED")  # delivered by the next round
        return trouble

    monkeypatch.setattr(module, "read_messages", one_round)
    events = [e.payload async for e in SmsDeliveryTrigger(message_ids=ids, poll_interval=0).run()]
    assert events[0]["status"] == "success"
    assert events[0]["delivered"] == 1000
    assert pages_per_round == [10, 20]
    assert account.gets == []
