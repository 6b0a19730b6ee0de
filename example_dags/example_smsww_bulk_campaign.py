"""
### Campaign from a CRM export, with a cost preview

Send one notice to a list as a CRM exports it, in batches that run as mapped tasks, after previewing
the cost. `docs/campaigns.md` walks through every choice.

- The export holds numbers the way people typed them: E.164, with spaces, the Italian national way
  (`333 100 0103`), and two rows that are no number at all. `default_country="IT"` reads the numbers
  written without `+` as Italian; `on_invalid="skip"` leaves the bad rows out instead of stopping
  the campaign, and names each in the XCom key `refused` (the number as given and why). More bad rows
  than `max_refused_fraction` of a batch (default a tenth) send nothing for that batch: a broken
  export is not a campaign.
- `preview_cost` runs **SmsSendOperator** with `dry_run=True`: every row is checked and every message
  priced (free); the task returns the estimate, with the rows it would leave out, and sends nothing.
- `split` removes duplicate numbers from the whole list (compared in E.164, national numbers read as
  Italian; the first occurrence is kept, in order) and cuts it into batches of `BATCH_SIZE`. The operator
  only drops duplicates *within* the batch it is given, so without this a number listed twice could land
  in two batches and get the notice twice.
- `send_batch` is mapped over the batches with `.expand()`, each batch gated again and sent with a
  bounded number of requests in flight. Each mapped task has its own idempotency ledger, so retrying
  one batch never resends to the others or to itself.
- **The budget is per batch, not per campaign.** `max_total_price` is an argument of each mapped
  `send_batch` task, so every batch is checked on its own against `BATCH_BUDGET_EUR` (5 EUR): 32 rows in
  batches of 11 are 3 batches, so the campaign may spend up to 3 x 5 = 15 EUR
  (ceil(len(AUDIENCE) / BATCH_SIZE) x BATCH_BUDGET_EUR in general). A batch over its budget is
  refused whole before it sends anything; the other batches are not affected.
- `wait_for_delivery` is mapped the same way and succeeds when at least 90% of each batch is delivered
  (`min_delivered`), the usual bar for campaigns where a few numbers are always out of service.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

POLL_SECONDS = float(os.environ.get("SMSWW_EXAMPLE_POLL_SECONDS", "60"))


def _as_typed(n: int) -> str:
    """Number ``n`` of the export, written as a CRM holds it: E.164, spaced, or the Italian national way."""
    number = f"+39333{n:07d}"
    return [number, f"+39 333 {number[6:9]} {number[9:]}", f"333 {number[6:9]} {number[9:]}"][n % 3]


# Replace with your CRM export. 30 valid Italian mobile numbers for the sandbox, and two rows that are
# no number (one lands in each of the first two batches: 1 of 11 rows, within max_refused_fraction).
AUDIENCE = [_as_typed(n) for n in range(1_000_100, 1_000_130)]
AUDIENCE[7:7] = ["n/a"]
AUDIENCE[18:18] = ["ask at the desk"]
TEXT = "Service notice: planned maintenance tonight 22:00-23:00 CET. Reply STOP to opt out."
BATCH_SIZE = 11
# Checked by EACH mapped send_batch task on its own batch's dry-run estimate: the campaign as a whole
# may spend up to (number of batches) x BATCH_BUDGET_EUR, here 3 x 5.0 = 15 EUR.
BATCH_BUDGET_EUR = 5.0

with DAG(
    dag_id="example_smsww_bulk_campaign",
    description="Preview the cost, then send a notice to a list in mapped batches",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:
    preview_cost = SmsSendOperator(
        task_id="preview_cost",
        recipients=AUDIENCE,
        message=TEXT,
        default_country="IT",
        on_invalid="skip",
        dry_run=True,
        fail_on_multiple_messages=True,
        # Worldwide dry runs come back unpriced (the price is final after sending): without an assumed
        # price per part the preview's estimated_total_price would be None.
        price_per_part_if_unknown=0.10,
    )

    @task
    def split(numbers: list[str]) -> list[list[str]]:
        from airflow_provider_smsww.validation import Recipient, parse_recipient

        # Dedupe the whole list first (first occurrence wins, order kept): each send_batch only removes
        # duplicates inside its own batch. Numbers are compared in E.164, so "333 100 0100" and
        # "+393331000100" are one number; an invalid row is kept as written, for the send to report.
        unique: dict[str, str] = {}
        for number in numbers:
            parsed = parse_recipient(number, default_country="IT")
            unique.setdefault(parsed.e164 if isinstance(parsed, Recipient) else number.strip(), number)
        deduped = list(unique.values())
        return [deduped[i : i + BATCH_SIZE] for i in range(0, len(deduped), BATCH_SIZE)]

    batches = split(AUDIENCE)

    send_batch = SmsSendOperator.partial(
        task_id="send_batch",
        message=TEXT,
        default_country="IT",
        on_invalid="skip",  # a bad row is left out and named in the XCom "refused"
        max_refused_fraction=0.1,  # more than a tenth of a batch bad: that batch sends nothing
        fail_on_multiple_messages=True,
        max_total_price=BATCH_BUDGET_EUR,  # per mapped batch, not for the whole campaign
        price_per_part_if_unknown=0.10,
        max_concurrency=10,
        retries=2,
        retry_delay=timedelta(seconds=10),
    ).expand(recipients=batches)

    wait_for_delivery = SmsDeliverySensor.partial(
        task_id="wait_for_delivery",
        min_delivered=math.ceil((BATCH_SIZE - 1) * 0.9),  # 90% of the 10 numbers of each batch
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=6).total_seconds(),
    ).expand(message_ids=send_batch.output)

    preview_cost >> batches
