"""Issue 12 item 1: a gateway (or a proxy) that ignores ``dryRun`` turns the gate's first dry run into a
real SMS. The task must stop for good at that first sign (a failure Airflow does not retry), and a
retry of the same task (same task state store) must not dry-run again: at most one SMS in total."""

from __future__ import annotations

import pytest

from airflow_provider_smsww.compat import AirflowFailException
from airflow_provider_smsww.exceptions import SmsWwDryRunIgnoredError
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from tests.fakes import FakeGateway, FakeStore, task_context

RECIPIENTS = [f"+39333123{i:04d}" for i in range(10)]


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_ignored_dry_run_fails_for_good_and_no_retry_sends_again(
    gateway: FakeGateway, dry_run: bool
) -> None:
    gateway.dry_run_echo = False  # every request is sent for real, dry run or not
    store = FakeStore()
    op = SmsSendOperator(task_id="send", recipients=RECIPIENTS, message="Report ready", dry_run=dry_run)
    for try_number in range(1, 6):  # what Airflow would do with retries=4, were the error retryable
        with pytest.raises(SmsWwDryRunIgnoredError) as info:
            op.execute(task_context(store, try_number=try_number))
        assert isinstance(info.value, AirflowFailException), "Airflow would retry this"
    assert len(gateway.posts) == 1  # the canary dry run of the first try, nothing more
    assert len(gateway.sent_to()) == 1  # and it was sent for real
    assert "options.dryRun false" in str(info.value)
