"""How many SMS parts a text costs: GSM-7 / UCS-2 detection, character and part counting.

Every part is billed, so the operator counts parts locally before it asks the API to price a message,
and the sandbox uses the same rules so that its answers match the real gateway's. No maintained PyPI
package does only this (the GSM codecs on PyPI encode PDUs, they do not count billable parts), and the
rules fit on one screen.
"""

from __future__ import annotations

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


def char_cost(char: str, encoding: Encoding) -> int:
    """What one character costs in a part: GSM-7 extension characters two septets (ESC + code), UCS-2
    characters their UTF-16 code units (two for most emoji, a surrogate pair)."""
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def count_characters(text: str, encoding: Encoding) -> int:
    """Characters as the gateway counts them (the sum of :func:`char_cost`)."""
    return sum(char_cost(ch, encoding) for ch in text)


def count_parts(text: str, encoding: Encoding) -> int:
    """Parts needed for ``text``: 160 in one part, else up to 153 per part (70 / 67 for UCS-2).

    A two-unit character (an escape pair, a surrogate pair) is never split across parts: when it does
    not fit in what is left of a part it starts the next one, so a long text can need one part more
    than its character count divided by 153.
    """
    total = count_characters(text, encoding)
    if total == 0:
        return 0
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if total <= single:
        return 1
    parts, used = 1, 0
    for ch in text:
        cost = char_cost(ch, encoding)
        if used + cost > multi:
            parts, used = parts + 1, 0
        used += cost
    return parts


def analyse(text: str) -> SegmentInfo:
    """Encoding, character count and number of parts of ``text``."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    characters = count_characters(text, encoding)
    return SegmentInfo(encoding=encoding, characters=characters, parts=count_parts(text, encoding))
