"""DAGs for the campaign tests (issue 28): an audience as a CRM exports it, 31 rows: 25 numbers in E.164,
3 written the Italian national way, 1 UK number with the 00 prefix, and 2 rows that are no number.
With ``default_country="IT", on_invalid="skip"`` the 29 numbers are texted and the 2 rows are named;
without ``default_country`` the 6 rows it cannot read are above ``max_refused_fraction``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator

E164 = [
    *(f"+39333470{n:04d}" for n in range(18)),
    "+33612345678",
    "+4915123456789",
    "+34612345678",
    "+12025550143",
    "+61412345678",
    "+819012345678",
    "+5511912345678",
]
NATIONAL = ["333 555 1000", "333-555-1001", "(333) 555 1002"]
UK = "0044 7400 123456"
NOT_NUMBERS = ["n/a", "call me back"]


def audience() -> list[str]:
    """The 31 rows in export order, the bad ones in the middle."""
    return [*E164[:12], NOT_NUMBERS[0], *NATIONAL, UK, *E164[12:], NOT_NUMBERS[1]]


def offers() -> list[dict[str, Any]]:
    """A personalised text per row of :func:`audience`."""
    return [
        {"recipient": row, "message": f"Hello customer {n}: 10% off this week"}
        for n, row in enumerate(audience())
    ]


def _campaign_dag(dag_id: str, **send: Any) -> DAG:
    """A DAG of one campaign send over :func:`audience`, ``send`` its operator's arguments."""
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:

        @task
        def export() -> list[str]:
            return audience()

        SmsSendOperator(task_id="send", recipients=export(), message="Spring sale: 10% off this week", **send)
    return dag


dag_campaign = _campaign_dag("smsww_campaign", default_country="IT", on_invalid="skip")
#: The export read without its country: 6 of 31 rows (19%) cannot be read, above the default 10%.
dag_campaign_no_country = _campaign_dag("smsww_campaign_no_country", on_invalid="skip")


with DAG(
    dag_id="smsww_campaign_mapped",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as dag_campaign_mapped:

    @task
    def halves() -> list[list[str]]:
        rows = audience()
        return [rows[:16], rows[16:]]

    @task
    def personalised() -> list[dict[str, Any]]:
        return offers()

    SmsSendOperator.partial(
        task_id="send", message="Spring sale: 10% off this week", default_country="IT", on_invalid="skip"
    ).expand(recipients=halves())
    SmsSendOperator(
        task_id="send_personalised",
        messages=personalised(),
        default_country="IT",
        on_invalid="skip",
        max_refused_fraction=0.07,
    )
