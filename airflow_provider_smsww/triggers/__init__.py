"""The provider's triggers, and the one rule their waits share: :func:`seconds_until`."""

from __future__ import annotations

from datetime import UTC, datetime


def seconds_until(moment: datetime) -> float:
    """Seconds from now until ``moment`` (timezone-aware), 0 once it is past.

    :param moment: the time to wait for.
    """
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
