"""Shared set-up of the unit tests: one ``smsww_default`` connection to a mocked API host, and a hook
on it. HTTP is mocked with pytest-httpx; nothing leaves the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from tests.fakes import API, TOKEN, FakeGateway, set_connection


@pytest.fixture(autouse=True)
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token connection to the mocked host, without client retries: an error reaches the code under
    test at once and no test sleeps (the retry policy has tests of its own)."""
    set_connection(monkeypatch, host=API, password=TOKEN, extra={"max_retries": 0})


@pytest.fixture
async def hook() -> AsyncIterator[SmsWwHook]:
    """A hook on ``smsww_default``, its async client closed after the test."""
    hook = SmsWwHook()
    yield hook
    await hook.aclose()


@pytest.fixture
def gateway(httpx_mock: Any) -> FakeGateway:
    """The one fake SMS API of the unit tests (see :class:`tests.fakes.FakeGateway`)."""
    fake = FakeGateway()
    httpx_mock.add_callback(fake, is_reusable=True, is_optional=True)
    return fake
