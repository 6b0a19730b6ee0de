"""The sandbox's HTTP answers against facts written out from the spec and the standards.

The sandbox checks requests with the provider's own rules (``validation``, ``segments``), so a test in
which the sandbox agrees with the client's local checks proves nothing about the rules themselves. Here
no expected value is computed by the provider: each one is written out, or read from the spec's file.

Sources:
- the spec (shared/api/smsv2.openapi.json): its example request, response shape, error examples and
  the sender rules of ``SendMessageRequest`` (3-11 characters, alphanumeric and spaces, not purely
  numeric, ``Openapi`` when null or empty);
- ITU-T E.164: ``+``, a country code that does not start with 0, at most 15 digits in all;
- 3GPP TS 23.038 (GSM 03.38): the default alphabet and its extension table, written out below, where an
  extension character is sent as ESC plus one septet and so counts two;
- 3GPP TS 23.040: a part carries 140 octets: 160 GSM-7 septets or 70 UCS-2 characters alone, and when
  split, 6 octets of each part hold the concatenation header: 153 septets or 67 characters per part;
  a character beyond U+FFFF (most emoji) is sent as a UTF-16 surrogate pair and counts two.

Every fact is asserted from the sandbox's HTTP answer; dry runs answer ``encoding``, ``charactersCount``
and ``messageCount`` without sending.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox
from tests.sandbox.helpers import SPEC_EXAMPLE, SPEC_PATH

ITALIAN_MOBILE = "+393331234567"  # the spec's example recipient
SPANISH_MOBILE = "+34612345678"
UK_MOBILE = "+447911123456"

#: 3GPP TS 23.038 default alphabet, positions 0x00 to 0x7F in order, without ESC (0x1B), which introduces
#: the extension table. 0x0A is line feed, 0x0D carriage return, 0x24 the currency sign.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: 3GPP TS 23.038 extension table: form feed, ^ { } \ [ ~ ] | and the euro sign; each is ESC + septet.
GSM_EXTENSION = "\f^{}\\[~]|€"

#: Characters in neither table: any one of them makes the whole message UCS-2. The typographic apostrophe
#: (U+2019) and the em dash (U+2014) are the ones word processors slip into GSM-looking text.
NOT_GSM = ["ł", "á", "ê", "`", "\u2019", "\u2014", "ж", "中"]

FORBIDDEN_WORD = "forbiddenword"  # the sandbox's default forbidden-word list


def spec() -> dict[str, Any]:
    spec_doc: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec_doc


def error_example(path: str, status: str, name: str | None = None) -> dict[str, Any]:
    """The spec's example error body for ``status`` on ``POST path`` (the named one of several)."""
    content = spec()["paths"][path]["post"]["responses"][status]["content"]["application/json"]
    example: dict[str, Any] = content["example"] if name is None else content["examples"][name]["value"]
    return example


def send(http: httpx.Client, text: str, region: str = "WW", **fields: Any) -> httpx.Response:
    """A send of ``text`` to the spec's example recipient (or ``fields["recipient"]``)."""
    return http.post(f"/{region}-messages", json={"recipient": ITALIAN_MOBILE, "message": text, **fields})


def dry_run(http: httpx.Client, text: str, **options: bool) -> httpx.Response:
    return send(http, text, options={"dryRun": True, **options})


def counted(http: httpx.Client, text: str) -> tuple[str, int, int]:
    """``(encoding, charactersCount, messageCount)`` of a dry run of ``text``."""
    response = dry_run(http, text)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return data["encoding"], data["charactersCount"], data["messageCount"]


# --- the tables themselves -------------------------------------------------------------------------


def test_the_written_tables_have_the_standards_sizes() -> None:
    assert len(GSM_BASIC) == 127 == len(set(GSM_BASIC))  # 128 positions, ESC left out
    assert len(GSM_EXTENSION) == 10 == len(set(GSM_EXTENSION))
    assert not set(GSM_BASIC) & set(GSM_EXTENSION)
    assert not set(NOT_GSM) & (set(GSM_BASIC) | set(GSM_EXTENSION))


# --- the spec's example, envelope, auth and errors ---------------------------------------------------


def test_the_spec_example_request_is_accepted_as_data_holding_a_message(http: httpx.Client) -> None:
    response = http.post("/WW-messages", json=SPEC_EXAMPLE)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"data"}
    message = body["data"]
    properties = spec()["components"]["schemas"]["MessageResponse"]["properties"]
    assert set(message) <= set(properties)
    assert set(properties) - set(message) <= {"otp", "otpOptions"}  # "only present for OTP requests"
    assert message["state"] == "NEW"
    assert (message["recipient"], message["internationalPrefix"], message["countryCode"]) == (
        "+393331234567",
        "39",
        "IT",
    )
    assert message["sender"] == "MyCompany"
    assert message["message"] == "Hello! This is a test message."
    assert (message["encoding"], message["charactersCount"], message["messageCount"]) == ("GSM-7", 30, 1)
    assert (message["price"], message["totalPrice"]) == (0, 0)  # WW: "initially 0"
    assert message["isOtp"] is False
    assert message["options"] == {"dryRun": False, "failOnMultipleMessages": False}


@pytest.mark.parametrize(
    ("request_line", "headers"),
    [
        (("POST", "/WW-messages"), {}),
        (("GET", "/messages"), {}),
        (("GET", "/messages/633aabe3e4a9a0e69811ad7f"), {}),
        (("POST", "/WW-messages"), {"Authorization": "Bearer not-a-token"}),
        (("GET", "/messages"), {"Authorization": "Bearer not-a-token"}),
    ],
)
def test_a_call_without_a_valid_bearer_token_is_401(
    sandbox_app: InProcessSandbox, request_line: tuple[str, str], headers: dict[str, str]
) -> None:
    method, path = request_line
    body = {"recipient": ITALIAN_MOBILE, "message": "Hello"}
    with httpx.Client(transport=sandbox_app.transport, base_url=sandbox_app.url) as anonymous:
        assert anonymous.request(method, path, headers=headers, json=body).status_code == 401


def test_an_unknown_message_id_is_404(http: httpx.Client) -> None:
    assert http.get("/messages/633aabe3e4a9a0e69811ad7f").status_code == 404  # the spec's example id


@pytest.mark.parametrize(
    ("example", "fields"),
    [
        ("Invalid Sender", {"sender": "ab"}),
        ("Numeric Sender", {"sender": "12345"}),
        ("Invalid Recipient", {"recipient": "3331234567"}),
        ("Forbidden Content", {"message": f"a {FORBIDDEN_WORD}", "options": {"dryRun": True}}),
    ],
)
def test_each_documented_422_is_answered_as_the_spec_shows(
    http: httpx.Client, example: str, fields: dict[str, Any]
) -> None:
    response = send(http, "Hello", **fields)
    assert response.status_code == 422
    assert response.json() == error_example("/WW-messages", "422", example)


@pytest.mark.parametrize("region", ["IT", "ES"])
def test_regional_422s_are_answered_as_the_spec_shows(http: httpx.Client, region: str) -> None:
    abroad = {"IT": SPANISH_MOBILE, "ES": ITALIAN_MOBILE}[region]
    home = {"IT": ITALIAN_MOBILE, "ES": SPANISH_MOBILE}[region]
    path = f"/{region}-messages"
    wrong_country = send(http, "Hello", region, recipient=abroad)
    assert wrong_country.status_code == 422
    assert wrong_country.json() == error_example(path, "422", "Wrong Country")
    forbidden = send(http, FORBIDDEN_WORD, region, recipient=home, options={"dryRun": True})
    assert forbidden.status_code == 422
    assert forbidden.json() == error_example(path, "422", "Forbidden Content (Dry Run)")


def test_forbidden_content_in_a_real_send_blocklists_the_account(http: httpx.Client) -> None:
    refused = send(http, f"a {FORBIDDEN_WORD}")
    assert refused.status_code == 422
    assert refused.json() == error_example("/WW-messages", "422", "Forbidden Content")
    later = send(http, "Hello")
    assert later.status_code == 403
    assert later.json() == error_example("/WW-messages", "403")


# --- sender rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["abc", "abcdefghijk", "My Company", "Shop 24", "A1B2", "24Shop"])
def test_senders_of_3_to_11_alphanumerics_and_spaces_are_accepted(http: httpx.Client, sender: str) -> None:
    response = send(http, "Hello", sender=sender, options={"dryRun": True})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["sender"] == sender


@pytest.mark.parametrize("fields", [{}, {"sender": None}, {"sender": ""}])
def test_a_null_empty_or_missing_sender_is_openapi(http: httpx.Client, fields: dict[str, Any]) -> None:
    response = send(http, "Hello", options={"dryRun": True}, **fields)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["sender"] == "Openapi"


@pytest.mark.parametrize("sender", ["ab", "abcdefghijkl", "My-Shop", "Shop!", "Shop_24", "Café+"])
def test_senders_of_the_wrong_length_or_characters_are_2021(http: httpx.Client, sender: str) -> None:
    response = send(http, "Hello", sender=sender, options={"dryRun": True})
    assert (response.status_code, response.json()["code"]) == (422, 2021)


@pytest.mark.parametrize("sender", ["123", "12345", "12345678901"])
def test_purely_numeric_senders_are_2024(http: httpx.Client, sender: str) -> None:
    response = send(http, "Hello", sender=sender, options={"dryRun": True})
    assert (response.status_code, response.json()["code"]) == (422, 2024)


# --- E.164 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipient", [ITALIAN_MOBILE, UK_MOBILE, SPANISH_MOBILE])
def test_e164_numbers_are_accepted(http: httpx.Client, recipient: str) -> None:
    response = send(http, "Hello", recipient=recipient, options={"dryRun": True})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["recipient"] == recipient


@pytest.mark.parametrize(
    "recipient",
    [
        "393331234567",  # no '+'
        "00393331234567",  # an international call prefix, not E.164
        "+0393331234567",  # a country code never starts with 0
        "+3933312345678901",  # 16 digits: E.164 allows 15 at most
        "+39333123456a",
        "+",
    ],
)
def test_numbers_that_are_not_e164_are_2011(http: httpx.Client, recipient: str) -> None:
    response = send(http, "Hello", recipient=recipient, options={"dryRun": True})
    assert response.status_code == 422
    assert response.json() == error_example("/WW-messages", "422", "Invalid Recipient")


# --- GSM 03.38 encoding and parts -------------------------------------------------------------------


def test_the_whole_basic_table_is_gsm7_one_septet_each(http: httpx.Client) -> None:
    assert counted(http, GSM_BASIC) == ("GSM-7", 127, 1)


def test_the_whole_extension_table_is_gsm7_two_septets_each(http: httpx.Client) -> None:
    assert counted(http, GSM_EXTENSION) == ("GSM-7", 20, 1)


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_is_160_septets_alone_and_153_a_part_when_split(
    http: httpx.Client, length: int, parts: int
) -> None:
    text = (GSM_BASIC * 4)[:length]
    assert counted(http, text) == ("GSM-7", length, parts)


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_an_extension_character_counts_two_septets(http: httpx.Client, char: str) -> None:
    # Text around the characters: a message of form feeds alone is blank, which the sandbox refuses.
    assert counted(http, "ab" + char * 79) == ("GSM-7", 160, 1)
    assert counted(http, "ab" + char * 80) == ("GSM-7", 162, 2)
    assert counted(http, "a" + char * 80 + "b") == ("GSM-7", 162, 2)


def test_80_euro_signs_fill_one_part_and_81_need_two(http: httpx.Client) -> None:
    assert counted(http, "€" * 80) == ("GSM-7", 160, 1)
    assert counted(http, "€" * 81) == ("GSM-7", 162, 2)


def test_one_extension_character_can_tip_a_message_into_two_parts(http: httpx.Client) -> None:
    assert counted(http, "a" * 158 + "€") == ("GSM-7", 160, 1)
    assert counted(http, "a" * 159 + "€") == ("GSM-7", 161, 2)


@pytest.mark.parametrize("char", NOT_GSM)
def test_one_character_outside_gsm7_makes_the_message_ucs2(http: httpx.Client, char: str) -> None:
    assert counted(http, "Hello " + char) == ("UCS-2", 7, 1)


def test_an_emoji_makes_the_message_ucs2_and_takes_two_units(http: httpx.Client) -> None:
    # Beyond U+FFFF a character travels as a UTF-16 surrogate pair: 4 of a part's 140 octets.
    assert counted(http, "Hello 😀") == ("UCS-2", 8, 1)
    assert counted(http, "😀" * 35) == ("UCS-2", 70, 1)
    assert counted(http, "😀" * 36) == ("UCS-2", 72, 2)


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_is_70_characters_alone_and_67_a_part_when_split(
    http: httpx.Client, length: int, parts: int
) -> None:
    assert counted(http, "ł" * length) == ("UCS-2", length, parts)


def test_one_non_gsm_character_in_gsm_text_sets_the_parts_by_ucs2(http: httpx.Client) -> None:
    assert counted(http, "a" * 69 + "ł") == ("UCS-2", 70, 1)
    assert counted(http, "a" * 70 + "ł") == ("UCS-2", 71, 2)
    assert counted(http, "a" * 159 + "ł") == ("UCS-2", 160, 3)  # 160 GSM-7 septets would be one part


# --- failOnMultipleMessages -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "parts"), [("a" * 160, 1), ("€" * 80, 1), ("ł" * 70, 1)])
def test_fail_on_multiple_messages_lets_one_part_through(http: httpx.Client, text: str, parts: int) -> None:
    response = dry_run(http, text, failOnMultipleMessages=True)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["messageCount"] == parts


@pytest.mark.parametrize("text", ["a" * 161, "€" * 81, "ł" * 71, "a" * 70 + "ł"])
def test_fail_on_multiple_messages_refuses_more_than_one_part(
    http: httpx.Client, sandbox_app: InProcessSandbox, text: str
) -> None:
    assert dry_run(http, text, failOnMultipleMessages=True).status_code == 422
    real = send(http, text, options={"failOnMultipleMessages": True})
    assert real.status_code == 422
    assert http.get("/messages").json() == {"data": []}
