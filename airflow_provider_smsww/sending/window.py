"""Quiet hours: the local hours within which a recipient may be texted (``send_window``).

Each recipient's local time comes from the number (``phonenumbers``' time-zone data); a number that
spans several zones (a mobile range used across a country) is open only during the hours all its zones
share, so nobody in any of them is texted outside the window. A window may wrap past midnight
(``(time(20), time(8))`` is the night). ``docs/operator.md`` tells how the operator waits for a window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_smsww.sending.ledger import unknown_among

if TYPE_CHECKING:
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger

log = logging.getLogger(__name__)

#: How far ahead an opening is looked for: every window opens within a day in each zone, so a week is
#: plenty, and a number whose zones share no hour at all is found out within it.
HORIZON = timedelta(days=8)
#: What ``phonenumbers`` answers for a number it cannot place.
UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class SendWindow:
    """Local hours ``[start, end)`` within which a message may be sent.

    :param start: the local time the window opens.
    :param end: the local time it closes (before ``start``: the window wraps past midnight).
    :param default_tz: the zone of a number ``phonenumbers`` cannot place (without it such a number is
        refused at the gate).
    """

    start: time
    end: time
    default_tz: str | None = None

    @classmethod
    def of(cls, window: Any, default_tz: Any = None) -> SendWindow | None:
        """The operator's ``send_window`` and ``send_window_default_tz`` checked when the DAG is parsed;
        None when no window is given. Raises ``ValueError`` naming what is wrong."""
        if window is None:
            if default_tz is not None:
                raise ValueError("send_window_default_tz is only used with a send_window")
            return None
        if (
            not isinstance(window, tuple | list)
            or len(window) != 2
            or not all(isinstance(t, time) and not isinstance(t, datetime) for t in window)
        ):
            raise ValueError(
                "send_window must be two datetime.time values (opens, closes), e.g. "
                f"(time(8, 0), time(20, 0)), not {window!r}"
            )
        start, end = window
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(
                "send_window's times are each recipient's local time: give them without a tzinfo"
            )
        if start == end:
            raise ValueError(
                f"send_window opens and closes at the same time ({start}): it would never be open"
            )
        if default_tz is not None and zone(default_tz) is None:
            raise ValueError(f"send_window_default_tz {default_tz!r} is not a known IANA time zone")
        return cls(start, end, default_tz)

    def contains(self, local: time) -> bool:
        """Whether a local time of day is inside the window."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def zones_of(self, e164: str) -> tuple[ZoneInfo, ...] | None:
        """The time zones of a number, the default zone when it has none; None when neither is known."""
        import phonenumbers
        from phonenumbers import timezone

        names = [
            n for n in timezone.time_zones_for_number(phonenumbers.parse(e164, None)) if n != UNKNOWN_ZONE
        ]
        zones = tuple(z for z in map(zone, names) if z is not None)
        if not zones and self.default_tz is not None:
            zones = (ZoneInfo(self.default_tz),)
        return zones or None

    def is_open(self, zones: Iterable[ZoneInfo], at: datetime) -> bool:
        """Whether ``at`` is inside the window in every one of ``zones``."""
        return all(self.contains(at.astimezone(z).time().replace(tzinfo=None)) for z in zones)

    def next_opening(self, zones: tuple[ZoneInfo, ...], after: datetime) -> datetime | None:
        """The first instant at or after ``after`` when the window is open in every zone; None when the
        zones share no hour of it (within :data:`HORIZON`).

        The shared hours open when the last of the zones' windows opens, so the candidates are the
        window's start in each zone, day by day; daylight-saving changes are zoneinfo's business.
        """
        if self.is_open(zones, after):
            return after
        candidates = sorted(
            opening
            for z in zones
            for day in range(-1, HORIZON.days + 1)
            if (opening := _local_instant(after.astimezone(z).date() + timedelta(days=day), self.start, z))
            > after
        )
        return next((c for c in candidates if c - after <= HORIZON and self.is_open(zones, c)), None)


def _local_instant(day: Any, at: time, z: ZoneInfo) -> datetime:
    """``at`` on ``day`` in zone ``z``, in UTC (a time that a spring-forward skips maps past the gap)."""
    local = datetime.combine(day, at, tzinfo=z)
    return local.astimezone(UTC)


@cache
def zone(name: str) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when the time-zone database does not know it."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Schedule:
    """When each number of a batch may be texted: ``waiting`` maps the numbers outside their window
    to when it next opens; ``problems`` names the numbers no window can ever open for."""

    waiting: dict[str, datetime]
    problems: dict[str, str]

    @property
    def next_opening(self) -> datetime | None:
        return min(self.waiting.values(), default=None)


def schedule(window: SendWindow, numbers: Iterable[str], now: datetime) -> Schedule:
    """Sort ``numbers`` (E.164) into those inside their window at ``now`` and those waiting for it.

    A number with no time zone (and no ``default_tz``), or whose zones share no hour of the window, is a
    problem: it could never be sent, and the batch is refused before any request.
    """
    waiting: dict[str, datetime] = {}
    problems: dict[str, str] = {}
    by_zones: dict[tuple[ZoneInfo, ...], datetime | None] = {}  # many numbers share their zones
    for number in numbers:
        zones = window.zones_of(number)
        if zones is None:
            problems[number] = (
                "send_window: the number's time zone is unknown; give send_window_default_tz to use one"
            )
            continue
        if zones not in by_zones:
            by_zones[zones] = window.next_opening(zones, now)
        opening = by_zones[zones]
        if opening is None:
            names = ", ".join(sorted(str(z) for z in zones))
            problems[number] = (
                f"send_window: its time zones ({names}) share no hour of {window.start}-{window.end}"
            )
        elif opening > now:
            waiting[number] = opening
    return Schedule(waiting, problems)


def hold_outside_window(
    window: SendWindow | None, batch: Batch, to_send: Batch, now: Callable[[], datetime]
) -> tuple[Batch, Batch, dict[str, datetime]]:
    """With a send window, a round sends only the recipients inside theirs (the whole batch was
    gated): ``batch`` and ``to_send`` without the others, and when each other's window opens."""
    if window is None:
        return batch, to_send, {}
    opens = schedule(window, {r.e164 for r in to_send.recipients}, now()).waiting
    waiting = {r.key: opens[r.e164] for r in to_send.recipients if r.e164 in opens}
    batch, to_send = _without(batch, waiting), _without(to_send, waiting)
    if waiting:
        log.info(
            "%d recipient(s) outside their send window, the first window opening at %s; %d to send now",
            len(waiting),
            min(waiting.values()).isoformat(timespec="seconds"),
            len(to_send.recipients),
        )
    return batch, to_send, waiting


def _without(batch: Batch, keys: Mapping[str, object]) -> Batch:
    """The batch without the recipients of ``keys``."""
    return replace(batch, recipients=tuple(r for r in batch.recipients if r.key not in keys))


def unknown_while_waiting(
    waiting: dict[str, datetime], ledger: Ledger, now: Callable[[], datetime]
) -> dict[str, datetime]:
    """The unknown outcomes an earlier round left among the recipients now waiting for their window:
    kept in the ledger's round until their window opens, so that they are then looked up, not resent
    blindly. A round that stopped mid-way (a crash) may have sent any of them, as late as now."""
    if not waiting or ledger.started_at() is None:
        return {}
    return unknown_among(ledger, list(waiting), now)
