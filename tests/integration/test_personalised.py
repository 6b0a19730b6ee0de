"""A personalised batch in a real run (``dag.test()``) on every supported Airflow (issue 21): an upstream
``@task`` returns 30 entries, the sandbox fails 30% of the sends before storing them and 10% after, the
client does not retry and Airflow retries the task: each (recipient, text) is sent exactly once, 29 in
all, and the delivery sensor sees every one delivered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from smsww_personalised_dags import dag_personalised, dag_personalised_mapped, entries, shop_batches

from airflow_provider_smsww.sandbox.faults import FaultConfig
from airflow_provider_smsww.sandbox.server import SandboxHandle, run_sandbox
from tests.fakes import connect

pytestmark = pytest.mark.integration


@contextmanager
def failing_sandbox(monkeypatch: pytest.MonkeyPatch, seed: int) -> Iterator[SandboxHandle]:
    """The sandbox failing 30% of the sends before storing them and 10% after, on a connection whose
    client does not retry (Airflow's retries and the settle rule do)."""
    faults = FaultConfig(rate_5xx=0.3, rate_5xx_after=0.1, seed=seed)
    with run_sandbox(faults=faults, credit=1000) as handle:
        connect(monkeypatch, handle, max_retries=0)
        yield handle


def test_thirty_entries_send_29_messages_exactly_once_through_faults(
    airflow_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = {(e["recipient"].replace(" ", ""), e["message"]) for e in entries()}
    assert len(entries()) == 30
    assert len(wanted) == 29
    with failing_sandbox(monkeypatch, seed=5) as handle:
        run = dag_personalised.test()

        assert str(run.state) == "success"
        accepted = handle.sandbox.accepted()
        sent = Counter((m.recipient.e164, m.text) for m in accepted)
        assert sent == dict.fromkeys(wanted, 1)
        assert {m.sender for m in accepted if m.recipient.e164 == "+393334500001"} == {"Shop"}
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        assert tis["send"].try_number > 1  # the faults did make tries fail part-way
        assert str(tis["wait"].state) == "success"  # the sensor saw all 29 delivered
        records = tis["send"].xcom_pull(task_ids="send")
        assert sorted(r["id"] for r in records) == sorted(m.id for m in accepted)
        print(f"\nPERSONALISED tries={tis['send'].try_number} sent={sum(sent.values())}")


def test_mapped_over_lists_of_entries_each_map_index_sends_its_own_exactly_once(
    airflow_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``.partial(...).expand(messages=...)``: one personalised batch per map index, each with its own
    ledger through the same faults, and a mapped sensor per batch."""
    wanted = Counter((e["recipient"], e["message"]) for batch in shop_batches() for e in batch)
    with failing_sandbox(monkeypatch, seed=7) as handle:
        run = dag_personalised_mapped.test()

        assert str(run.state) == "success"
        assert Counter((m.recipient.e164, m.text) for m in handle.sandbox.accepted()) == wanted
        tis = run.get_task_instances()
        sends = sorted((ti for ti in tis if ti.task_id == "send"), key=lambda ti: ti.map_index)
        assert [ti.map_index for ti in sends] == [0, 1, 2]
        faulted = Counter(f.fault for f in handle.faults.log if f.path == "/WW-messages")
        assert faulted["503"] > 0, faulted  # sends lost before they were stored
        assert faulted["503-after"] > 0, faulted  # and sends stored but not answered
        assert all(str(ti.state) == "success" for ti in tis if ti.task_id == "wait")
        for ti, batch in zip(sends, shop_batches(), strict=True):
            records = ti.xcom_pull(task_ids="send", map_indexes=ti.map_index)
            assert sorted(r["recipient"] for r in records) == sorted(e["recipient"] for e in batch)
        print(f"\nPERSONALISED mapped: tries={[ti.try_number for ti in sends]} faults={dict(faulted)}")
