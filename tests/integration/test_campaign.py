"""Campaigns from a CRM export in a real run (``dag.test()``) on every supported Airflow (issue 28): 31
rows, 29 of them numbers once read with ``default_country="IT"``, 2 no number at all. ``on_invalid="skip"``
texts the 29 once each and names the 2 in the XCom ``refused``; a run with more bad rows than
``max_refused_fraction`` sends nothing and names the share; a mapped send and a personalised one skip
the same way."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from smsww_campaign_dags import (
    E164,
    NOT_NUMBERS,
    audience,
    dag_campaign,
    dag_campaign_mapped,
    dag_campaign_no_country,
)

pytestmark = pytest.mark.integration

NATIONAL_E164 = ["+393335551000", "+393335551001", "+393335551002"]
UK_E164 = "+447400123456"
VALID = {*E164, *NATIONAL_E164, UK_E164}


def _send_ti(run: Any, task_id: str = "send") -> Any:
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return ti


def test_a_31_row_export_texts_the_29_numbers_once_and_names_the_2_rows_refused(
    airflow_db: str, smsww_sandbox: Any
) -> None:
    assert len(audience()) == 31
    assert len(VALID) == 29

    run = dag_campaign.test()

    assert str(run.state) == "success"
    assert Counter(m.recipient.e164 for m in smsww_sandbox.sandbox.accepted()) == dict.fromkeys(VALID, 1)
    ti = _send_ti(run)
    refused = ti.xcom_pull(task_ids="send", key="refused")
    assert [r["recipient"] for r in refused] == NOT_NUMBERS
    assert all("is not a phone number" in r["reason"] for r in refused)
    records = ti.xcom_pull(task_ids="send")
    assert sorted(r["recipient"] for r in records) == sorted(VALID)


def test_an_export_read_without_its_country_sends_nothing_and_names_the_share(
    airflow_db: str, smsww_sandbox: Any
) -> None:
    """Without ``default_country`` the 3 national numbers, the 00 one and the 2 non-numbers are refused:
    6 of 31 rows, above the default 10%."""
    run = dag_campaign_no_country.test()

    assert str(run.state) == "failed"
    assert smsww_sandbox.sandbox.accepted() == []
    assert not [r for r in smsww_sandbox.sandbox.requests if r[1] == "/WW-messages"]  # not even a dry run
    ti = _send_ti(run)
    assert str(ti.state) == "failed"
    assert ti.xcom_pull(task_ids="send", key="refused") is None


def test_mapped_and_personalised_sends_skip_their_bad_rows_each(airflow_db: str, smsww_sandbox: Any) -> None:
    """Two map indexes of 16 and 15 rows (one bad each), and a personalised batch of the 31 rows with
    ``max_refused_fraction=0.07`` (2 of 31 is 6.5%): every valid number gets both texts, once each."""
    run = dag_campaign_mapped.test()

    assert str(run.state) == "success"
    sent = Counter(m.recipient.e164 for m in smsww_sandbox.sandbox.accepted())
    assert sent == dict.fromkeys(VALID, 2)
    mapped = sorted(
        (ti for ti in run.get_task_instances() if ti.task_id == "send"), key=lambda t: t.map_index
    )
    refused = [ti.xcom_pull(task_ids="send", map_indexes=ti.map_index, key="refused") for ti in mapped]
    assert [[r["recipient"] for r in rows] for rows in refused] == [[NOT_NUMBERS[0]], [NOT_NUMBERS[1]]]
    personalised = _send_ti(run, "send_personalised").xcom_pull(task_ids="send_personalised", key="refused")
    assert [(r["index"], r["recipient"]) for r in personalised] == [
        (12, NOT_NUMBERS[0]),
        (30, NOT_NUMBERS[1]),
    ]
