"""How many SMS parts a text costs: GSM-7 / UCS-2 detection, character and part counting.

Every part is billed, so the operator counts parts locally before it asks the API to price a message,
and the sandbox uses the same rules so that its answers match the real gateway's. No maintained PyPI
package does only this (the GSM codecs on PyPI encode PDUs, they do not count billable parts), and the
rules fit on one screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: GSM 03.38 basic character set (one septet each). ESC (0x1B) is left out: it only introduces
#: the extension table and is not a character a user can send.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each costs two septets (ESC + code).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """The billable shape of one message text."""

    encoding: Encoding
    characters: int
    parts: int

    @property
    def single_part_limit(self) -> int:
        return GSM7_SINGLE if self.encoding == "GSM-7" else UCS2_SINGLE


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def char_units(char: str, encoding: Encoding) -> int:
    """Units one character costs, and which must stay together in one part: GSM-7 septets (an
    extension character is an escape pair, two), UCS-2 code units (a character outside the Basic
    Multilingual Plane, most emoji, is a surrogate pair, two)."""
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def count_characters(text: str, encoding: Encoding) -> int:
    """Characters as the gateway counts them (see :func:`char_units`)."""
    return sum(char_units(ch, encoding) for ch in text)


def count_parts(characters: int, encoding: Encoding) -> int:
    """Parts needed for ``characters`` one-unit characters: 160 in one part, else 153 per part (70 /
    67 for UCS-2). A text with two-unit characters may need one more: see :func:`split_parts`."""
    if characters == 0:
        return 0
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    return 1 if characters <= single else math.ceil(characters / multi)


def split_parts(text: str, encoding: Encoding | None = None) -> list[str]:
    """``text`` cut into the parts the gateway sends. An escape pair or a surrogate pair never
    straddles a part boundary: a part that has one unit left for a two-unit character ends there, so
    152 'a' + '€' + 152 'a' is three parts of 152, 153 and 1 septets, not two."""
    encoding = encoding or ("GSM-7" if is_gsm7(text) else "UCS-2")
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if count_characters(text, encoding) <= single:
        return [text] if text else []
    parts: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        units = char_units(char, encoding)
        if used + units > multi:
            parts.append(text[start:index])
            start, used = index, 0
        used += units
    parts.append(text[start:])
    return parts


def analyse(text: str) -> SegmentInfo:
    """Encoding, character count and number of parts of ``text``."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    characters = count_characters(text, encoding)
    return SegmentInfo(encoding=encoding, characters=characters, parts=len(split_parts(text, encoding)))
