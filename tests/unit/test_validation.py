"""Local input rules, with the API's error codes (spec v1.2.7: 2011, 2013, 2021, 2024)."""

from __future__ import annotations

import pytest

from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_SENDER_LENGTH,
    CODE_SENDER_NUMERIC,
    CODE_WRONG_COUNTRY,
)
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.validation import (
    MAX_PARTS,
    Problem,
    Recipient,
    check_message,
    check_region,
    check_sender,
    parse_recipient,
)


def test_codes_are_the_spec_codes() -> None:
    assert (CODE_BAD_RECIPIENT, CODE_WRONG_COUNTRY, CODE_SENDER_LENGTH, CODE_SENDER_NUMERIC) == (
        2011,
        2013,
        2021,
        2024,
    )


# --- recipients -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+393331234567", "WW", Recipient("+393331234567", "IT", "39")),
        ("+39 333 123 4567", "WW", Recipient("+393331234567", "IT", "39")),
        ("+39-333-123-4567", "IT", Recipient("+393331234567", "IT", "39")),
        ("+39 (333) 123-4567", "IT", Recipient("+393331234567", "IT", "39")),
        ("+39.333.123.4567", "WW", Recipient("+393331234567", "IT", "39")),
        ("  +39 333 1234567\n", "WW", Recipient("+393331234567", "IT", "39")),
        ("+39\u00a0333\u00a01234567", "WW", Recipient("+393331234567", "IT", "39")),
        ("+34 612 34 56 78", "ES", Recipient("+34612345678", "ES", "34")),
        ("+1 (650) 253-0000", "WW", Recipient("+16502530000", "US", "1")),
        ("+49 1512 3456789", "WW", Recipient("+4915123456789", "DE", "49")),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str, expected: Recipient) -> None:
    assert parse_recipient(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param("", "recipient is empty", id="empty"),
        pytest.param("   ", "recipient is empty", id="blank"),
        pytest.param("3331234567", "not an E.164 number", id="national"),
        pytest.param("39 333 1234567", "not an E.164 number", id="no-plus"),
        pytest.param("+39abc1234567", "not an E.164 number", id="letters"),
        pytest.param("+0393331234567", "not an E.164 number", id="plus-zero"),
        pytest.param("+123456", "not an E.164 number", id="six-digits"),
        pytest.param("+1234567890123456", "not an E.164 number", id="sixteen-digits"),
        pytest.param("++393331234567", "not an E.164 number", id="double-plus"),
        pytest.param("+39/3331234567", "not an E.164 number", id="slash"),
        pytest.param("+10000000000", "not a valid phone number for its country code", id="invalid-us"),
        pytest.param("+39000", "not an E.164 number", id="short-it"),
        pytest.param("+999123456789", "is not a phone number", id="unassigned-country-code"),
    ],
)
def test_invalid_numbers_are_refused_with_2011(raw: str, text: str) -> None:
    problem = parse_recipient(raw)
    assert isinstance(problem, Problem)
    assert text in problem.message
    assert problem.code == CODE_BAD_RECIPIENT


@pytest.mark.parametrize("raw", ["00393331234567", "0039 333 123 4567", "00-39-333-1234567"])
def test_a_00_prefix_is_refused_with_a_hint(raw: str) -> None:
    problem = parse_recipient(raw)
    assert isinstance(problem, Problem)
    assert problem.code == CODE_BAD_RECIPIENT
    assert "instead of '00'" in problem.message
    assert "('+393331234567')" in problem.message  # the number it probably meant


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("333 555 1000", "+393335551000", id="national-mobile"),
        pytest.param("06 6988 1234", "+390669881234", id="national-landline"),
        pytest.param("0044 7400 123456", "+447400123456", id="international-prefix"),
        pytest.param("+44 7400 123456", "+447400123456", id="e164-unchanged"),
    ],
)
def test_a_default_country_reads_numbers_without_a_plus_as_dialled_there(raw: str, expected: str) -> None:
    parsed = parse_recipient(raw, default_country="IT")
    assert isinstance(parsed, Recipient), parsed
    assert parsed.e164 == expected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param("333 555", "not a valid phone number", id="too-short"),
        pytest.param("n/a", "not a phone number", id="no-number"),
        pytest.param("333-CALL-ME", "not a phone number", id="letters"),
    ],
)
def test_a_default_country_still_refuses_what_is_no_number(raw: str, text: str) -> None:
    problem = parse_recipient(raw, default_country="IT")
    assert isinstance(problem, Problem)
    assert text in problem.message
    assert problem.code == CODE_BAD_RECIPIENT


def test_without_a_default_country_a_national_number_is_refused_naming_it() -> None:
    problem = parse_recipient("333 555 1000")
    assert isinstance(problem, Problem)
    assert "not an E.164 number" in problem.message
    assert "set default_country" in problem.message


def test_not_a_string_is_refused() -> None:
    problem = parse_recipient(393331234567)  # type: ignore[arg-type]
    assert isinstance(problem, Problem)
    assert problem.code == CODE_BAD_RECIPIENT


@pytest.mark.parametrize(
    ("raw", "region", "country"),
    [
        ("+34612345678", "IT", "ES"),
        ("+16502530000", "IT", "US"),
        ("+393331234567", "ES", "IT"),
        ("+4915123456789", "ES", "DE"),
    ],
)
def test_it_and_es_endpoints_refuse_other_countries_with_2013(raw: str, region: str, country: str) -> None:
    problem = parse_recipient(raw, region)
    assert isinstance(problem, Problem)
    assert problem.code == CODE_WRONG_COUNTRY
    assert f"is a {country} number" in problem.message
    assert f"the {region} endpoint only sends to {region}" in problem.message


@pytest.mark.parametrize("raw", ["+34612345678", "+393331234567", "+16502530000"])
def test_ww_takes_every_country(raw: str) -> None:
    assert isinstance(parse_recipient(raw, "WW"), Recipient)


# --- sender -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender", [None, "", "Openapi", "ABC", "ABCDEFGHIJK", "My Company", "Shop24", "24 Shop"]
)
def test_good_senders(sender: str | None) -> None:
    assert check_sender(sender) is None


@pytest.mark.parametrize(
    ("sender", "code", "text"),
    [
        pytest.param("AB", CODE_SENDER_LENGTH, "(it has 2 characters)", id="too-short"),
        pytest.param("ABCDEFGHIJKL", CODE_SENDER_LENGTH, "(it has 12 characters)", id="too-long"),
        pytest.param("Acme-Co", CODE_SENDER_LENGTH, "3 to 11 letters, digits or spaces", id="dash"),
        pytest.param("Café", CODE_SENDER_LENGTH, "3 to 11 letters, digits or spaces", id="accent"),
        pytest.param("Shop!", CODE_SENDER_LENGTH, "3 to 11 letters, digits or spaces", id="punctuation"),
        pytest.param("12345", CODE_SENDER_NUMERIC, "cannot be purely numeric", id="numeric"),
        pytest.param("123 456", CODE_SENDER_NUMERIC, "cannot be purely numeric", id="numeric-spaced"),
        pytest.param("+393331234567", CODE_SENDER_LENGTH, "3 to 11", id="phone-number"),
    ],
)
def test_bad_senders(sender: str, code: int, text: str) -> None:
    problem = check_sender(sender)
    assert problem is not None
    assert problem.code == code
    assert text in problem.message


# --- message ----------------------------------------------------------------------------------------


def test_a_message_gives_its_segments() -> None:
    assert check_message("Report ready") == SegmentInfo("GSM-7", 12, 1)
    assert check_message("ж" * 71) == SegmentInfo("UCS-2", 71, 2)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_message_is_refused(text: str) -> None:
    problem = check_message(text)
    assert isinstance(problem, Problem)
    assert problem.message == "message is empty"


def test_up_to_255_parts_and_no_more() -> None:
    assert check_message("a" * 153 * MAX_PARTS) == SegmentInfo("GSM-7", 153 * 255, 255)
    problem = check_message("a" * (153 * MAX_PARTS + 1))
    assert isinstance(problem, Problem)
    assert "needs 256 parts" in problem.message
    assert "at most 255" in problem.message
    ucs2 = check_message("ж" * (67 * MAX_PARTS + 1))
    assert isinstance(ucs2, Problem)
    assert "UCS-2" in ucs2.message


def test_fail_on_multiple_messages() -> None:
    assert check_message("a" * 160, fail_on_multiple_messages=True) == SegmentInfo("GSM-7", 160, 1)
    problem = check_message("a" * 161, fail_on_multiple_messages=True)
    assert isinstance(problem, Problem)
    assert "needs 2 parts" in problem.message
    assert "160 fit in one" in problem.message
    problem = check_message("€" * 81, fail_on_multiple_messages=True)
    assert isinstance(problem, Problem)
    assert "162 GSM-7 characters" in problem.message
    problem = check_message("ж" * 71, fail_on_multiple_messages=True)
    assert isinstance(problem, Problem)
    assert "70 fit in one" in problem.message


# --- region -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["WW", "IT", "ES"])
def test_known_regions(region: str) -> None:
    assert check_region(region) is None


@pytest.mark.parametrize("region", ["FR", "ww", "", "WW-messages"])
def test_unknown_regions(region: str) -> None:
    problem = check_region(region)
    assert problem is not None
    assert f"region {region!r} is unknown: use one of WW, IT, ES" == problem.message
