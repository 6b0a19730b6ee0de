"""Billable parts: GSM-7 160/153, UCS-2 70/67, extension characters and UTF-16 surrogates count two, and
an escape pair or a surrogate pair never straddles a part boundary."""

from __future__ import annotations

import pytest

from airflow_provider_smsww.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentInfo,
    analyse,
    count_characters,
    count_parts,
    is_gsm7,
)

CASES = [
    # text, encoding, characters, parts
    pytest.param("", "GSM-7", 0, 0, id="empty"),
    pytest.param("a", "GSM-7", 1, 1, id="one-char"),
    pytest.param("a" * 160, "GSM-7", 160, 1, id="gsm-160"),
    pytest.param("a" * 161, "GSM-7", 161, 2, id="gsm-161"),
    pytest.param("a" * 153 * 2, "GSM-7", 306, 2, id="gsm-153x2"),
    pytest.param("a" * (153 * 2 + 1), "GSM-7", 307, 3, id="gsm-153x2+1"),
    pytest.param("a" * 153 * 255, "GSM-7", 39015, 255, id="gsm-255-parts"),
    pytest.param("ж" * 70, "UCS-2", 70, 1, id="ucs2-70"),
    pytest.param("ж" * 71, "UCS-2", 71, 2, id="ucs2-71"),
    pytest.param("ж" * 67 * 2, "UCS-2", 134, 2, id="ucs2-67x2"),
    pytest.param("ж" * (67 * 2 + 1), "UCS-2", 135, 3, id="ucs2-67x2+1"),
    pytest.param("€" * 80, "GSM-7", 160, 1, id="80-euro"),
    pytest.param("€" * 81, "GSM-7", 162, 2, id="81-euro"),
    pytest.param("a" * 159 + "€", "GSM-7", 161, 2, id="euro-tips-over"),
    pytest.param("^{}\\[~]|€", "GSM-7", 18, 1, id="every-extension-char"),
    pytest.param("page\fbreak", "GSM-7", 11, 1, id="form-feed"),
    pytest.param("a" * 159 + "é", "GSM-7", 160, 1, id="accented-basic"),
    pytest.param("a" * 159 + "ê", "UCS-2", 160, 3, id="one-non-gsm-switches"),
    pytest.param("Ciao 😀", "UCS-2", 7, 1, id="emoji-two-units"),
    pytest.param("😀" * 35, "UCS-2", 70, 1, id="35-emoji"),
    pytest.param("😀" * 36, "UCS-2", 72, 2, id="36-emoji"),
    pytest.param("€ ж", "UCS-2", 3, 1, id="euro-in-ucs2-counts-one"),
    pytest.param("line\r\nnext", "GSM-7", 10, 1, id="cr-lf"),
    pytest.param("\t", "UCS-2", 1, 1, id="tab-is-not-gsm"),
    pytest.param("`", "UCS-2", 1, 1, id="backtick-is-not-gsm"),
]


@pytest.mark.parametrize(("text", "encoding", "characters", "parts"), CASES)
def test_analyse(text: str, encoding: str, characters: int, parts: int) -> None:
    assert analyse(text) == SegmentInfo(encoding=encoding, characters=characters, parts=parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("characters", "encoding", "parts"),
    [
        (0, "GSM-7", 0),
        (160, "GSM-7", 1),
        (161, "GSM-7", 2),
        (306, "GSM-7", 2),
        (307, "GSM-7", 3),
        (459, "GSM-7", 3),
        (460, "GSM-7", 4),
        (70, "UCS-2", 1),
        (71, "UCS-2", 2),
        (134, "UCS-2", 2),
        (135, "UCS-2", 3),
    ],
)
def test_count_parts(characters: int, encoding: str, parts: int) -> None:
    text = ("a" if encoding == "GSM-7" else "中") * characters
    assert count_parts(text, encoding) == parts  # type: ignore[arg-type]


def test_single_part_limit() -> None:
    assert analyse("hi").single_part_limit == 160
    assert analyse("привет").single_part_limit == 70


def test_character_tables() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points minus ESC
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC
    assert is_gsm7("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà")
    assert not is_gsm7("ç")  # only the capital Ç is in the table
    assert is_gsm7("")


def test_count_characters_per_encoding() -> None:
    assert count_characters("€", "GSM-7") == 2
    assert count_characters("€", "UCS-2") == 1
    assert count_characters("😀", "UCS-2") == 2
    assert count_characters("\f", "GSM-7") == 2


# -- pairs at a part boundary --------------------------------------------------------------------------
# An escape pair (GSM-7 extension characters) or a surrogate pair (UCS-2, most emoji) never straddles a
# part boundary, so a text may need one part more than its units divided by 153 (67). Under-counting
# would let a message through ``fail_on_multiple_messages`` or a budget one part short.

CJK = "漢"
EMOJI = "😀"


@pytest.mark.parametrize("pair", sorted(GSM7_EXTENSION))
def test_an_escape_pair_at_a_boundary_starts_the_next_part(pair: str) -> None:
    text = "a" * 152 + pair + "a" * 152
    assert analyse(text).parts == 3  # 152, then the pair and 151, then 1


def test_a_surrogate_pair_at_a_boundary_starts_the_next_part() -> None:
    text = CJK * 66 + EMOJI + CJK * 66
    info = analyse(text)
    assert (info.encoding, info.characters, info.parts) == ("UCS-2", 134, 3)


def test_pairs_that_do_not_straddle_change_nothing() -> None:
    assert analyse("a" * 151 + "€" + "a" * 153).parts == 2  # 153 + 153
    assert analyse(CJK * 65 + EMOJI + CJK * 67).parts == 2  # 67 + 67
    assert analyse("€" * 80).parts == 1  # one part holds 160 septets, pairs included


def test_a_parts_limit_sees_the_extra_part() -> None:
    from airflow_provider_smsww.exceptions import SmsWwGateError
    from airflow_provider_smsww.sending.batch import check_locally

    with pytest.raises(SmsWwGateError, match="needs 3 parts"):
        check_locally(["+393331234567"], "a" * 152 + "€" + "a" * 152, max_parts_per_message=2)
