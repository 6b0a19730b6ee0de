"""The Messages view: every SMS of a DAG run in one page, a tab on the run in Airflow 3.1+ (docs/receipts.md).

A run's messages are those its send tasks returned (their XCom) and those its receipts name (the send
tasks' and the notifier's, with receipts on). A message's state is its latest receipt's; without one,
the gateway is asked (through the hook, at most :data:`MAX_LOOKUPS` messages a page), and if it cannot
answer, the state the send task recorded stays. Numbers are masked; no text, secret or code is shown.
Airflow does not authenticate a plugin's routes, so :func:`allowed` asks the deployment's auth manager
itself: no login 401, a user it does not let read the DAG's runs 403.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from fastapi import HTTPException, Request

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.models import MessageState
from airflow_provider_smsww.receipts import mask_number

log = logging.getLogger(__name__)

#: The operator whose return values are message records (``Message.summary``).
SEND_OPERATOR = "SmsSendOperator"
#: Messages without a receipt whose state one page view asks the gateway for (one listing page per 100).
MAX_LOOKUPS = 500
#: The states after which a message does not change (:attr:`MessageState.is_final`).
FINAL_STATES = frozenset(state.value for state in MessageState if state.is_final)
#: The cookie in which Airflow's UI keeps the user's token (``COOKIE_NAME_JWT_TOKEN``).
TOKEN_COOKIE = "_token"


@dataclass(frozen=True)
class Row:
    """One message as the view shows it."""

    message_id: str
    recipient: str  # masked
    country: str
    state: str
    parts: int | None
    price: float | None
    sent_at: str | None
    delivered_at: str | None
    task: str
    #: Where the state comes from: ``receipt``, ``gateway`` (looked up) or ``send`` (the task's record).
    source: str = "send"


async def allowed(request: Request, dag_id: str) -> None:
    """Refuse a caller the deployment's auth manager does not let read ``dag_id``'s runs.

    :raises HTTPException: 401 without a usable token (``Authorization: Bearer`` or the UI's cookie), 403
        when the auth manager refuses.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except Exception:  # expired or invalid: a login is needed again
        raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"}) from None
    if not manager.is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    ):
        raise HTTPException(403, "Forbidden")


def run_messages(dag_id: str, run_id: str) -> list[Row]:
    """The run's messages, from its send tasks' records and its receipts, in the order they were sent;
    those without a receipt in the gateway's state."""
    from airflow.utils.session import create_session

    with create_session() as session:
        sent = _sent(session, dag_id, run_id)
        receipts = _latest_receipts(session, dag_id, run_id)
    rows = [_row(message_id, sent.get(message_id), receipts.get(message_id)) for message_id in sent]
    rows += [
        _row(message_id, None, extra) for message_id, extra in receipts.items() if message_id not in sent
    ]
    conn_ids = {str(e.get("conn_id")) for e in receipts.values() if e.get("conn_id")}
    return looked_up(rows, conn_ids.pop() if len(conn_ids) == 1 else DEFAULT_CONN_ID)


def looked_up(rows: list[Row], conn_id: str) -> list[Row]:
    """The rows, those with no receipt and no final state in the state the gateway reports now.

    :param rows: the run's rows.
    :param conn_id: the connection to ask through (the one the run's receipts name, else the default).
    :return: the rows unchanged where the gateway cannot be asked (logged): the page still shows.
    """
    from airflow_provider_smsww.hooks.smsww import SmsWwHook

    ids = [r.message_id for r in rows if r.source == "send" and r.state not in FINAL_STATES][:MAX_LOOKUPS]
    if not ids:
        return rows
    try:
        found = SmsWwHook(smsww_conn_id=conn_id).get_messages(ids, by_listing=len(ids) > 10)
    except Exception as exc:
        log.warning("The Messages view could not ask the gateway for %d message(s): %s", len(ids), exc)
        return rows
    return [_updated(r, found[r.message_id]) if r.message_id in found else r for r in rows]


def _updated(row: Row, message: Any) -> Row:
    """``row`` with the state and price the gateway reports (``message``: a
    :class:`~airflow_provider_smsww.models.Message`)."""
    return replace(
        row,
        state=message.state_name,
        price=_price(float(message.total_price), row.price),
        sent_at=message.sent_at.isoformat() if message.sent_at else row.sent_at,
        delivered_at=message.delivered_at.isoformat() if message.delivered_at else row.delivered_at,
        source="gateway",
    )


def _sent(session: Any, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Message id -> the send task's record of it (with ``task``), from the run's send tasks' XCom."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    sends = select(TaskInstance.task_id, TaskInstance.map_index).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.operator == SEND_OPERATOR
    )
    keys = {(task_id, map_index) for task_id, map_index in session.execute(sends)}
    query = select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
    )
    records: dict[str, dict[str, Any]] = {}
    for task_id, map_index, value in session.execute(query):
        if (task_id, map_index) in keys:
            for record in _records(XComModel.deserialize_value(_Value(value))):
                records[record["id"]] = {**record, "task": _task(task_id, map_index)}
    return records


@dataclass
class _Value:
    """What ``XComModel.deserialize_value`` reads: an object with ``value``."""

    value: Any


def _records(value: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (r for r in value if isinstance(r, Mapping) and isinstance(r.get("id"), str) and r["id"])


def _latest_receipts(session: Any, dag_id: str, run_id: str) -> dict[str, Mapping[str, Any]]:
    """Message id -> its latest receipt's ``extra``, from the asset events the run's messages caused; a
    final state is never replaced by an in-flight one (the gateway's retry of an earlier receipt may
    arrive after a later one)."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    query = (
        select(AssetEvent.extra)
        .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
        .order_by(AssetEvent.timestamp, AssetEvent.id)
    )
    latest: dict[str, Mapping[str, Any]] = {}
    for extra in session.scalars(query):
        if isinstance(extra, Mapping) and "receipt" in extra and isinstance(extra.get("message_id"), str):
            known = latest.get(extra["message_id"])
            if known is None or known.get("state") not in FINAL_STATES or extra.get("state") in FINAL_STATES:
                latest[extra["message_id"]] = extra
    return latest


def _task(task_id: str, map_index: int | None) -> str:
    return task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"


def _row(message_id: str, record: Mapping[str, Any] | None, receipt: Mapping[str, Any] | None) -> Row:
    """The view's row: the receipt's facts first, the send task's record for what it lacks."""
    from airflow_provider_smsww.validation import Recipient, parse_recipient

    record, receipt = record or {}, receipt or {}
    number = str(record.get("recipient") or "")
    parsed = parse_recipient(number) if number else None
    country = parsed.country_code if isinstance(parsed, Recipient) else ""
    task = record.get("task") or _task(str(receipt.get("task_id") or "(DAG)"), receipt.get("map_index"))
    return Row(
        message_id=message_id,
        recipient=receipt.get("recipient") or mask_number(number, _prefix(parsed)),
        country=str(receipt.get("country") or country),
        state=str(receipt.get("state") or record.get("state") or "UNKNOWN"),
        parts=receipt.get("parts") or record.get("messageCount"),
        price=_price(receipt.get("price"), record.get("totalPrice")),
        sent_at=receipt.get("sent_at"),
        delivered_at=receipt.get("delivered_at"),
        task=str(task),
        source="receipt" if receipt else "send",
    )


def _prefix(parsed: Any) -> str:
    return str(getattr(parsed, "international_prefix", "") or "")


def _price(*candidates: Any) -> float | None:
    """The first price given and above zero (a send records 0 before the gateway prices it)."""
    prices = [float(p) for p in candidates if isinstance(p, int | float)]
    return next((p for p in prices if p > 0), prices[0] if prices else None)


def summary(rows: list[Row]) -> dict[str, Any]:
    """Totals: messages per state and the run's cost (what the gateway priced)."""
    return {
        "messages": len(rows),
        "states": dict(Counter(r.state for r in rows).most_common()),
        "cost": round(sum(r.price or 0.0 for r in rows), 4),
    }


def as_json(dag_id: str, run_id: str, rows: list[Row]) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, **summary(rows), "rows": [asdict(r) for r in rows]}


COLUMNS = ("Number", "Country", "State", "Parts", "Price (EUR)", "Sent (UTC)", "Delivered (UTC)", "Task")
_STATE_COLOURS = {"DELIVERED": "#2e7d32", "PENDING": "#f9a825", "NEW": "#90a4ae"}
_FAILED_COLOUR = "#c62828"


def as_html(dag_id: str, run_id: str, rows: list[Row]) -> str:
    """The page: totals, a bar per state, and the table."""
    totals = summary(rows)
    return _PAGE.format(
        title=html.escape(f"{dag_id} / {run_id}"),
        count=totals["messages"],
        cost=f"{totals['cost']:.4f}",
        bars="".join(_bar(state, n, totals["messages"]) for state, n in totals["states"].items()),
        head="".join(f"<th>{name}</th>" for name in COLUMNS),
        cells="".join(_table_row(r) for r in rows) or '<tr><td colspan="8">No SMS in this run.</td></tr>',
    )


def _table_row(r: Row) -> str:
    """A row's cells, in the order of :data:`COLUMNS`, escaped."""
    values = (
        r.recipient,
        r.country,
        r.state,
        r.parts,
        r.price,
        _when(r.sent_at),
        _when(r.delivered_at),
        r.task,
    )
    return "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in values) + "</tr>"


def _bar(state: str, count: int, total: int) -> str:
    """One state's bar: its share of the run's messages, green delivered, red a final failure."""
    colour = _STATE_COLOURS.get(state, _FAILED_COLOUR)
    share = f"width:{100 * count / max(total, 1):.1f}%;background:{colour}"
    track = f'<span class="track"><span style="{share}"></span></span>'
    return f'<div class="bar">{track}{html.escape(state)} {count}</div>'


def _when(iso: str | None) -> str | None:
    """``2026-12-07T18:37:39.727Z`` as ``2026-12-07 18:37:39`` (the gateway's times are UTC)."""
    return iso[:19].replace("T", " ") if iso else None


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SMS of {title}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
.bar {{ display: flex; align-items: center; gap: 8px; margin: 2px 0; font-size: 13px; }}
.track {{ display: inline-block; width: 300px; height: 12px; background: #eee; }}
.track span {{ display: block; height: 12px; }}
</style></head><body>
<h2>SMS of {title}</h2>
<p><b id="count">{count}</b> message(s), cost <b id="cost">{cost}</b> EUR</p>
<div id="states">{bars}</div>
<p></p>
<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>
</body></html>
"""
