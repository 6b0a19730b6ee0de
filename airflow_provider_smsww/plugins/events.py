"""A genuine receipt becomes an event of the asset its origin names, once (docs/receipts.md).

Runs in Airflow's API server, which holds the metadata database: the event is written through Airflow's
asset manager (DAGs scheduled on the asset are queued as for any event) and names the send task as its
source. The gateway retries a receipt it got no 2xx for, so each event carries ``receipt`` =
``<message id>:<state>``, and a receipt whose token is already among the asset's events of the same task
and day is answered without a second event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_smsww.receipts import Origin, mask_number

log = logging.getLogger(__name__)

#: How far back a repeated receipt is looked for: the gateway's retries come within minutes.
REPEAT_WINDOW = timedelta(days=1)


def event_extra(message: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
    """What the asset event holds: the message's identity, state, origin, country, parts and price; the
    number masked, no text, no callback."""
    message_id, state = str(message["id"]), str(message.get("state") or "")
    return {
        "receipt": f"{message_id}:{state}",
        "message_id": message_id,
        "state": state,
        "conn_id": origin.conn_id,
        "dag_id": origin.dag_id,
        "run_id": origin.run_id,
        "task_id": origin.task_id,
        "map_index": origin.map_index,
        "recipient": mask_number(
            str(message.get("recipient") or ""), str(message.get("internationalPrefix") or "")
        ),
        "country": message.get("countryCode"),
        "parts": message.get("messageCount"),
        "price": message.get("totalPrice", message.get("price")),
        "sent_at": message.get("sentAt"),
        "delivered_at": message.get("deliveredAt"),
    }


def record(message: Mapping[str, Any], origin: Origin) -> bool:
    """Record the receipt of ``message`` as an event of ``origin.asset``.

    :return: False when it was recorded before (a repeated delivery) or the asset is unknown to Airflow
        (no DAG declares it: logged, and answered 2xx all the same, since a retry cannot help).
    """
    from airflow.utils.session import create_session

    extra = event_extra(message, origin)
    with create_session() as session:
        asset = _asset(session, origin.asset)
        if asset is None:
            log.warning(
                "Receipt not recorded: no asset named %r is known to Airflow (declare it in a DAG)",
                origin.asset,
            )
            return False
        if _seen(session, asset.id, origin, extra["receipt"]):
            return False
        _add_event(session, asset, origin, extra)
    return True


def _asset(session: Any, name: str) -> Any:
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    return session.scalar(select(AssetModel).where(AssetModel.name == name).limit(1))


def _seen(session: Any, asset_id: int, origin: Origin, token: str) -> bool:
    """Whether an event of this asset, task and day already carries ``token``: the database narrows by
    asset, time, source and the token's text, and the candidates are compared exactly."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import Text, cast, select

    task = AssetEvent.source_task_id
    query = select(AssetEvent.extra).where(
        AssetEvent.asset_id == asset_id,
        AssetEvent.timestamp >= datetime.now(UTC) - REPEAT_WINDOW,
        AssetEvent.source_dag_id == origin.dag_id,
        AssetEvent.source_run_id == origin.run_id,
        task == origin.task_id if origin.task_id else task.is_(None),
        cast(AssetEvent.extra, Text).like(f"%{token}%"),
    )
    candidates = session.scalars(query)
    return any(isinstance(extra, Mapping) and extra.get("receipt") == token for extra in candidates)


def _add_event(session: Any, asset: Any, origin: Origin, extra: dict[str, Any]) -> None:
    """The event, through the asset manager (which queues the DAGs scheduled on the asset), its source
    set to the task that sent the message."""
    from airflow.assets.manager import asset_manager

    event = asset_manager.register_asset_change(asset=asset, extra=extra, session=session)
    if event is not None:
        event.source_dag_id = origin.dag_id
        event.source_run_id = origin.run_id
        event.source_task_id = origin.task_id or None
        event.source_map_index = origin.map_index
