"""Issue 12 item 9: an escape pair (GSM-7 extension characters) or a surrogate pair (UCS-2, most emoji)
never straddles a part boundary, so a text may need one part more than its units divided by 153 (67).
Under-counting let a message through ``fail_on_multiple_messages`` or a budget one part short."""

from __future__ import annotations

import pytest

from airflow_provider_smsww.segments import GSM7_EXTENSION, analyse

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
