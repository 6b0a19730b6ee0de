"""The rows a campaign leaves out (``on_invalid="skip"``): who was refused and why, and the share of
refused rows above which the whole batch fails before any send.

A failure alert must reach everyone or fail, so by default (``on_invalid="fail"``) one bad number refuses
the batch. A CRM export of 100,000 customers has bad rows, and stopping for them sends nothing to the
good ones; with ``"skip"`` a row the local checks refuse (its number, or a personalised entry's own text
or sender), or whose dry run the gateway refuses for its number (codes 2011 and 2013), is left out and
reported. Many refused rows mean a broken export, not a campaign: above ``max_refused_fraction`` nothing
is sent. ``docs/campaigns.md`` tells the whole rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_WRONG_COUNTRY,
    SmsWwGateError,
    describe_problems,
)

#: ``on_invalid``: refuse the whole batch (an alert), or leave the refused rows out (a campaign).
OnInvalid = Literal["fail", "skip"]
ON_INVALID: tuple[OnInvalid, ...] = ("fail", "skip")
#: The default ``max_refused_fraction``: a tenth of an export may be bad (2 bad rows of 31 pass).
MAX_REFUSED_FRACTION = 0.1
#: The gateway's dry-run refusals that are about one recipient's number, which ``"skip"`` leaves out.
#: Any other refusal (forbidden content, the sender) is about the text: it fails the batch as always.
RECIPIENT_CODES = frozenset({CODE_BAD_RECIPIENT, CODE_WRONG_COUNTRY})


@dataclass(frozen=True, slots=True)
class Refused:
    """One row left out: the value as given (the number, or a personalised entry's number), why, and
    the entry's place in ``messages`` (None for ``recipients``)."""

    given: str
    reason: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The XCom form: ``{recipient, reason}``, with ``index`` for an entry of ``messages``."""
        row: dict[str, Any] = {"recipient": self.given, "reason": self.reason}
        return row if self.index is None else {**row, "index": self.index}

    @property
    def label(self) -> str:
        return row_label(self.given, self.index)


def row_label(given: str, index: int | None) -> str:
    """How errors and logs name a row: the number as given, with its place for an entry of ``messages``."""
    return given if index is None else f"messages[{index}] ({given})"


def check_share(refused: Sequence[Refused], rows: int, max_fraction: float) -> None:
    """Fail the batch, before any send, when the refused rows are more than ``max_fraction`` of the
    ``rows`` given, or are all of them; the error names the share and the refused rows.

    :param refused: every row left out so far.
    :param rows: how many rows were given (duplicates included).
    :param max_fraction: ``max_refused_fraction``, from 0 to 1.
    """
    if not refused or (len(refused) < rows and len(refused) <= max_fraction * rows):
        return
    share = f"{len(refused)} of {rows} row(s) ({len(refused) / rows:.1%}) refused"
    why = (
        "nothing is left to send" if len(refused) >= rows else f"above max_refused_fraction {max_fraction:g}"
    )
    problems = {r.label: r.reason for r in refused}
    raise SmsWwGateError(
        describe_problems(f"SMS batch refused: {share}, {why}; nothing was sent.", problems, limit=20),
        problems={"refused_share": share, **problems},
    )
