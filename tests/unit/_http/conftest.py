"""Shared set-up of the HTTP layer's tests: ``harness`` runs each test on both clients, and no test
sees a token minter shared by an earlier one."""

from __future__ import annotations

import pytest

from airflow_provider_smsww._http import auth as auth_module
from tests.unit._http.helpers import Harness


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)


@pytest.fixture(autouse=True)
def no_shared_minters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "_MINTERS", {})
