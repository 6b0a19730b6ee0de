"""Shared pieces of the sandbox tests: a hand-moved clock, in-process sandboxes, a callback receiver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox
from tests.sandbox.helpers import FakeClock, Receiver, serve_receiver


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox_app(clock: FakeClock) -> Iterator[InProcessSandbox]:
    """An in-process sandbox on a fake clock (states only move when the test ticks it)."""
    with in_process_sandbox(clock=clock) as box:
        yield box


@pytest.fixture
def http(sandbox_app: InProcessSandbox) -> Iterator[httpx.Client]:
    """A plain httpx client on the in-process sandbox, authorised with its static token."""
    headers = {"Authorization": f"Bearer {sandbox_app.token}"}
    with httpx.Client(transport=sandbox_app.transport, base_url=sandbox_app.url, headers=headers) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as receiver:
        yield receiver
