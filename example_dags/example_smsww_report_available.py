"""
### Report availability, the Airflow 3 way: scheduled on an Asset

When the daily report asset is updated, text its readers, with the link the producer put in the asset
event's `extra`.

- `example_smsww_report_publish` stands in for the job that builds the report: its task has the report
  asset as an outlet and records the report's URL in the event (`outlet_events[REPORT].extra`).
- `example_smsww_report_available` is **scheduled on the asset**: every update starts a run.
  `report_link` reads the URL from the triggering asset event, and `notify_readers`
  (**SmsSendOperator**) texts the readers after its free dry run. A run started by hand (REST API, CLI,
  UI), with no asset event, texts the link to the latest report instead: nothing here needs a logical
  date.

Set up the `smsww_default` connection (a token in the password field) or point it at the sandbox
(`smsww-sandbox`), trigger `example_smsww_report_publish`, and the report DAG follows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator

REPORT = Asset(name="smsww_example_daily_report", uri="file:///srv/reports/daily")
LATEST = "https://reports.example.com/daily/latest"

with DAG(
    dag_id="example_smsww_report_publish",
    description="Build the daily report and update its asset (the URL goes in the event's extra)",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["smsww", "example"],
) as publish_dag:

    @task(outlets=[REPORT])
    def publish_report(dag_run: Any = None, outlet_events: Any = None) -> str:
        """Stands in for the real work; the report's day is the logical date, else when the run started."""
        day = (dag_run.logical_date or dag_run.run_after).date().isoformat()
        url = f"https://reports.example.com/daily/{day}"
        outlet_events[REPORT].extra = {"url": url, "day": day}
        return url

    publish_report()


with DAG(
    dag_id="example_smsww_report_available",
    description="When the report asset is updated, text its readers the link from the asset event",
    schedule=[REPORT],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "recipients": Param(["+393331234567", "+447400123456"], type="array", items={"type": "string"}),
        "sender": Param("Reports", type="string", minLength=3, maxLength=11),
    },
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task
    def report_link(triggering_asset_events: Any = None) -> str:
        """The URL of the newest report event that started this run; the latest report without one."""
        events: list[Any] = []
        if triggering_asset_events:
            for asset_events in triggering_asset_events.values():
                events.extend(asset_events)
        urls = [event.extra.get("url") for event in events if (event.extra or {}).get("url")]
        return urls[-1] if urls else LATEST

    link = report_link()

    notify_readers = SmsSendOperator(
        task_id="notify_readers",
        recipients="{{ params.recipients }}",
        sender="{{ params.sender }}",
        message="Your daily report is ready: {{ ti.xcom_pull(task_ids='report_link') }}",
        fail_on_multiple_messages=True,
        max_total_price=5.0,
        price_per_part_if_unknown=0.10,
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    link >> notify_readers
