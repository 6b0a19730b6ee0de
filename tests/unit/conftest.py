"""Shared set-up of the unit tests: one ``smsww_default`` connection to a mocked API host, a hook on it,
and the one fake SMS API (``gateway``). HTTP is mocked with pytest-httpx; nothing leaves the process.

Layout: ``tests/unit`` mirrors ``airflow_provider_smsww``. The test of a module is in the folder of that
module (``_http/``, ``hooks/``, ``sending/``, ``operators/``, ``sensors/``, ``triggers/``,
``notifications/``), and the test of a root module is ``test_<module>.py`` (the package's
``__init__``, the provider's registration, is ``test_provider.py``). A test that crosses several modules
(bad input from the operator down to the wire, an ignored dry run, the settle time) is in
``cross_cutting/``. ``test_layout.py`` checks the package's layout rules, ``test_spending.py`` the money
path across hook, operator, sensor and notifier.

One fixture per concept: a connection is set with :func:`tests.fakes.set_connection` (here, for every
test), the fake SMS API is ``gateway`` (:class:`tests.fakes.FakeGateway`; a test scripts it through its
attributes), and the HTTP layer's tests have their own ``harness`` in ``_http/conftest.py``. Other
concepts have other names: ``capped_gateway`` (``test_spending.py``: the same fake, real sends only with a
per-task capped token) and ``otp_gateway`` (``operators/test_approval.py``: the OTP API)."""

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
