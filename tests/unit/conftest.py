"""Shared set-up of the unit tests: one ``smsww_default`` connection to a mocked API host, and a hook
on it. HTTP is mocked with pytest-httpx; nothing leaves the process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from tests.fakes import API, TOKEN


def set_connection(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    """Make ``smsww_default`` the connection given by ``fields`` (``conn_type`` is added)."""
    monkeypatch.setenv("AIRFLOW_CONN_SMSWW_DEFAULT", json.dumps({"conn_type": "smsww", **fields}))


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
