"""Receipts on the sending side: the connection's settings, each message's callback and credential, and
the check the endpoint makes of it (airflow_provider_smsww/receipts.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from airflow_provider_smsww.receipts import (
    DEFAULT_ASSET,
    ORIGIN_FIELD,
    RECEIPT_HEADER,
    Origin,
    ReceiptSettings,
    ReceiptStamp,
    is_genuine,
    mask_number,
)
from airflow_provider_smsww.sending.batch import (
    CALLBACK_KEY_FIELD,
    check_locally,
    idempotency_key,
    with_receipts,
)

SECRET = "s" * 40
ORIGIN = Origin("smsww_default", "etl", "manual__1", "send", 2, DEFAULT_ASSET)
STAMP = ReceiptStamp(ReceiptSettings("https://airflow.example.com/smsww/receipts", SECRET), ORIGIN)


def test_receipts_are_off_without_a_url_and_refused_with_a_short_secret() -> None:
    assert ReceiptSettings.of_extra({}) is None
    assert ReceiptSettings.of_extra({"receipts_url": " "}) is None
    with pytest.raises(ValueError, match="receipts_secret is missing or shorter than 32"):
        ReceiptSettings.of_extra(
            {"receipts_url": "https://a.example/smsww/receipts", "receipts_secret": "short"}
        )
    settings = ReceiptSettings.of_extra(
        {
            "receipts_url": "https://a.example/smsww/receipts",
            "receipts_secret": SECRET,
            "receipts_asset": "sms",
        }
    )
    assert settings is not None
    assert settings.asset == "sms"
    assert SECRET not in repr(settings)


def test_the_origin_survives_the_round_trip_through_custom_and_a_malformed_one_is_refused() -> None:
    assert Origin.of_custom({ORIGIN_FIELD: ORIGIN.as_custom()}) == ORIGIN
    for custom in ({}, {ORIGIN_FIELD: "x"}, {ORIGIN_FIELD: {**ORIGIN.as_custom(), "map": "2"}}):
        with pytest.raises(ValueError, match=f"custom.{ORIGIN_FIELD} is m"):
            Origin.of_custom(custom)
    partial = ORIGIN.as_custom()
    del partial["run"]
    with pytest.raises(ValueError, match="has no run"):
        Origin.of_custom({ORIGIN_FIELD: partial})


def test_each_message_carries_its_origin_key_and_a_credential_that_fits_it_alone() -> None:
    batch = check_locally(["+393331234567", "+393337654321"], "Report ready")
    keys = {r.key: idempotency_key("etl", "send", "manual__1", 2, r.key) for r in batch.recipients}
    batch = with_receipts(replace(batch, keys=keys), STAMP)
    first, second = (batch.request(r, dry_run=False).callback for r in batch.recipients)
    assert first is not None
    assert second is not None
    assert str(first.url) == "https://airflow.example.com/smsww/receipts"
    assert first.retry == 3
    assert first.custom[ORIGIN_FIELD] == ORIGIN.as_custom()
    assert first.custom[CALLBACK_KEY_FIELD] != second.custom[CALLBACK_KEY_FIELD]
    header = first.headers[RECEIPT_HEADER].get_secret_value()
    assert header.startswith("v1=")
    assert SECRET not in header
    assert is_genuine(SECRET, header, first.custom, ["393331234567"])
    # Another message's header, another number, another secret: no match.
    assert not is_genuine(SECRET, header, second.custom, ["393337654321"])
    assert not is_genuine(SECRET, header, first.custom, ["393337654321"])
    assert not is_genuine("t" * 40, header, first.custom, ["393331234567"])
    assert "v1=" not in repr(first)  # the header is a secret in the model


def test_a_users_own_callback_is_kept_and_no_receipts_leave_the_batch_as_it_was() -> None:
    own = check_locally(["+393331234567"], "x", callback={"url": "https://mine.example/hook"})
    assert with_receipts(own, STAMP) is own
    plain = check_locally(["+393331234567"], "x")
    assert with_receipts(plain, None) is plain
    assert plain.request(plain.recipients[0], dry_run=False).callback is None


def test_a_number_is_masked_to_its_prefix_and_last_three_digits() -> None:
    assert mask_number("+393331234567", "39") == "+39*******567"
    assert mask_number("393331234567", "39") == "+39*******567"
    assert mask_number("12", "") == "+12"
