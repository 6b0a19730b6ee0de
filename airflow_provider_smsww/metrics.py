"""Cost reporting, one way for the operator and the sensor: a log line, the XCom key ``cost``, and
spend metrics through Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as configured), so a
dashboard can show what SMS cost per DAG and task. Counters, tagged ``dag_id`` and ``task_id``:

- ``smsww.sent``: messages the gateway accepted (a retry does not count an earlier try's again);
- ``smsww.failed``: recipients the operator could not send to;
- ``smsww.refused``: rows ``on_invalid="skip"`` left out (a bad number, an entry refused);
- ``smsww.parts``: SMS parts of the accepted messages (what the gateway bills);
- ``smsww.cost_estimated_cents``: the dry-run estimate of the accepted messages, in euro cents;
- ``smsww.cost_actual_cents``: the ``totalPrice`` of the messages a delivery sensor saw final, in cents.

And gauges (a retry sets them again, so nothing is counted twice), same tags:

- ``smsww.task_cost_cents``: what the task instance has spent over every try so far, in cents (the
  earlier tries' spend plus this try's estimate);
- ``smsww.budget_left_cents``: what was left of ``max_total_price`` for this try (with a budget only).

A metric never fails a task: a broken metrics backend is logged at debug level and ignored.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "smsww"


def cents(eur: Decimal | float | None) -> int | None:
    """EUR to whole euro cents (half up); None stays None."""
    if eur is None:
        return None
    return int((Decimal(str(eur)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def emit(
    counts: dict[str, int | None],
    *,
    dag_id: str | None,
    task_id: str | None,
    gauges: dict[str, int | None] | None = None,
) -> None:
    """Increment ``smsww.<name>`` by each count (None and 0 are skipped) and set each gauge (None
    skipped), tagged with dag and task."""
    try:
        from airflow_provider_smsww.compat import stats

        Stats = stats()
        tags: dict[str, Any] = {"dag_id": dag_id or "", "task_id": task_id or ""}
        for name, value in counts.items():
            if value:
                Stats.incr(f"{PREFIX}.{name}", count=int(value), tags=tags)
        for name, value in (gauges or {}).items():
            if value is not None:
                Stats.gauge(f"{PREFIX}.{name}", value, tags=tags)
    except Exception:  # a metric must never fail the task that sends the SMS
        log.debug("SMS metrics not emitted", exc_info=True)


def report_send_cost(task: Any, context: Any, cost: dict[str, Any], failed: int) -> None:
    """What a send cost (:func:`~airflow_provider_smsww.sending.cost.cost_summary`): the counters
    ``sent``, ``failed``, ``parts`` and ``cost_estimated_cents``, the gauges ``task_cost_cents`` and
    ``budget_left_cents``, the XCom and the log line."""
    total = cost["estimated_total_price"]
    credit = cost["credit_before"]
    counts = {
        "sent": cost["messages"],
        "failed": failed,
        "parts": cost["parts"],
        "cost_estimated_cents": cents(total),
    }
    so_far = None if total is None else Decimal(str(cost["earlier_tries_spent"])) + Decimal(str(total))
    gauges = {"task_cost_cents": cents(so_far), "budget_left_cents": cents(cost.get("budget_left"))}
    _publish(
        task,
        context,
        cost,
        counts,
        f"Cost: {cost['messages']} message(s) accepted now ({cost['from_earlier_try']} by an earlier try, "
        f"{cost['earlier_tries_spent']:.4f} EUR), {cost['parts']} part(s), estimated total "
        f"{'unknown' if total is None else f'{total:.4f}'} EUR"
        + _budget_words(cost)
        + ("" if credit is None else f" (credit before {Decimal(str(credit)):.2f} EUR)"),
        gauges,
    )


def report_refused(task: Any, context: Any, refused: list[dict[str, Any]]) -> None:
    """The rows ``on_invalid="skip"`` left out (:class:`~airflow_provider_smsww.sending.refusals.Refused`):
    the counter ``refused``, the XCom key ``refused`` (empty when none was) and a warning naming them."""
    emit({"refused": len(refused)}, dag_id=task.dag_id, task_id=task.task_id)
    if push := getattr(context.get("ti"), "xcom_push", None):
        push(key="refused", value=refused)
    if refused:
        from airflow_provider_smsww.exceptions import describe_problems
        from airflow_provider_smsww.sending.refusals import row_label

        head = "Rows left out, not sent (on_invalid='skip'):"
        named = {row_label(row["recipient"], row.get("index")): row["reason"] for row in refused}
        task.log.warning("%s", describe_problems(head, named, limit=20))


#: How the cost line names each ``limit`` of the ``cost`` XCom.
LIMITS = {
    "gateway_token": "capped by the gateway (per-try token)",
    "client_estimate": "checked on the dry-run estimate only (no gateway cap)",
}


def _budget_words(cost: dict[str, Any]) -> str:
    """The budget part of the cost line: the task's budget, what this try had left, which limit held."""
    if cost.get("max_total_price") is None:
        return ""
    left = cost.get("budget_left")
    return (
        f"; max_total_price {cost['max_total_price']:g} EUR over every try"
        + ("" if left is None else f", {left:.4f} EUR left for this try")
        + (f", {LIMITS[cost['limit']]}" if cost.get("limit") in LIMITS else "")
    )


def report_actual_cost(task: Any, context: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a delivery sensor's messages cost, from their ``totalPrice`` (final once sent): the counter
    ``cost_actual_cents``, the XCom and the log line; returned too."""
    total = sum((Decimal(str(r.get("totalPrice") or 0)) for r in records), Decimal(0))
    cost = {
        "currency": "EUR",
        "messages": len(records),
        "parts": sum(int(r.get("messageCount") or 0) for r in records),
        "actual_total_price": float(total),
    }
    line = (
        f"Cost: {len(records)} message(s), {cost['parts']} part(s), "
        f"actual total {float(total):.4f} EUR (totalPrice)"
    )
    _publish(task, context, cost, {"cost_actual_cents": cents(total)}, line)
    return cost


def _publish(
    task: Any,
    context: Any,
    cost: dict[str, Any],
    counts: dict[str, int | None],
    line: str,
    gauges: dict[str, int | None] | None = None,
) -> None:
    """Emit the counters and gauges, push ``cost`` as the XCom key ``cost`` and log ``line``."""
    emit(counts, dag_id=task.dag_id, task_id=task.task_id, gauges=gauges)
    if push := getattr(context.get("ti"), "xcom_push", None):
        push(key="cost", value=cost)
    task.log.info("%s", line)
