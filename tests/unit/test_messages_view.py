"""The Messages view's rows and page (airflow_provider_smsww/plugins/messages.py): a receipt's facts win
over the send task's record, numbers are masked, text is escaped. The view over a real database and its
auth: tests/integration/test_receipt_events.py; in a browser: tests/deployment/messages_view.py."""

from __future__ import annotations

from typing import Any

from airflow_provider_smsww.plugins.messages import _row, as_html, as_json, looked_up, summary
from tests.fakes import API

RECORD = {"id": "m1", "recipient": "+393331234567", "state": "NEW", "messageCount": 1, "totalPrice": 0.0}
RECEIPT = {
    "receipt": "m1:DELIVERED",
    "message_id": "m1",
    "state": "DELIVERED",
    "recipient": "+39*******567",
    "country": "IT",
    "parts": 1,
    "price": 0.065,
    "task_id": "send",
    "map_index": 2,
    "sent_at": "2026-12-07T18:37:39.727Z",
    "delivered_at": "2026-12-07T18:37:54.527Z",
}


def test_a_receipt_wins_over_the_record_and_the_record_fills_in_without_one() -> None:
    with_receipt = _row("m1", {**RECORD, "task": "send[2]"}, RECEIPT)
    assert (with_receipt.state, with_receipt.price, with_receipt.task) == ("DELIVERED", 0.065, "send[2]")
    alone = _row("m1", {**RECORD, "task": "send"}, None)
    assert (alone.recipient, alone.country, alone.state, alone.price) == ("+39*******567", "IT", "NEW", 0.0)
    alert = _row("m2", None, {**RECEIPT, "task_id": "", "map_index": -1})
    assert alert.task == "(DAG)"


def test_the_page_shows_totals_masks_numbers_and_escapes_names() -> None:
    rows = [_row("m1", None, RECEIPT), _row("m2", None, {**RECEIPT, "state": "UNDELIVERABLE"})]
    assert summary(rows) == {"messages": 2, "states": {"DELIVERED": 1, "UNDELIVERABLE": 1}, "cost": 0.13}
    page = as_html("<dag>", "run&1", rows)
    assert "&lt;dag&gt; / run&amp;1" in page
    assert "<dag>" not in page
    assert "UNDELIVERABLE 1" in page
    assert "3331234567" not in page
    assert "2026-12-07 18:37:54" in page
    assert as_json("d", "r", [])["rows"] == []
    assert "No SMS in this run." in as_html("d", "r", [])


def test_a_message_without_a_receipt_takes_the_gateways_state_and_one_with_one_is_not_asked(
    httpx_mock: Any,
) -> None:
    delivered = {"id": "m1", "state": "DELIVERED", "totalPrice": 0.065, "deliveredAt": "2026-12-07T18:37:54Z"}
    httpx_mock.add_response(url=f"{API}/messages/m1", json={"data": delivered})
    rows = [_row("m1", {**RECORD, "task": "send"}, None), _row("m2", None, {**RECEIPT, "state": "PENDING"})]
    updated = looked_up(rows, "smsww_default")
    assert [(r.state, r.source) for r in updated] == [("DELIVERED", "gateway"), ("PENDING", "receipt")]
    assert updated[0].price == 0.065
    assert [r.url.path for r in httpx_mock.get_requests()] == ["/messages/m1"]


def test_a_gateway_that_cannot_answer_leaves_the_recorded_state(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=f"{API}/messages/m1", status_code=503)
    rows = [_row("m1", {**RECORD, "task": "send"}, None)]
    assert looked_up(rows, "smsww_default") == rows
    assert looked_up(rows, "no_such_connection") == rows


def test_a_late_in_flight_receipt_does_not_hide_a_final_state() -> None:
    from airflow_provider_smsww.plugins.messages import _latest_receipts

    class Session:
        def scalars(self, query: Any) -> list[dict[str, Any]]:  # oldest first, as the query orders them
            return [
                {**RECEIPT, "state": "DELIVERED", "receipt": "m1:DELIVERED"},
                {**RECEIPT, "state": "PENDING", "receipt": "m1:PENDING"},  # a retry, late
                {**RECEIPT, "message_id": "m2", "state": "PENDING", "receipt": "m2:PENDING"},
                {**RECEIPT, "message_id": "m2", "state": "EXPIRED", "receipt": "m2:EXPIRED"},
            ]

    latest = _latest_receipts(Session(), "etl", "manual__1")
    assert {k: v["state"] for k, v in latest.items()} == {"m1": "DELIVERED", "m2": "EXPIRED"}
