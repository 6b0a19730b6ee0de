"""Where a paced connection's schedule stands: the next request's start slot, the 429 pause, the
adaptive rate's state. Kept in memory for one process, or in a small file that every process on this host
shares, so that they pace as one client.

Why a host's processes share it: the gateway's rate limit is the account's, and a LocalExecutor, each
Celery worker (its task processes) and the triggerer run many processes on one host. Each pacing itself
at ``rate_limit`` sends that many times the limit, and the adaptive rate brings them back only by hearing
429s (measured with 8 processes: 10% of requests throttled). Processes on one host can agree without
any service: 144 bytes in the temporary directory, read and written under ``flock``. With them the host
starts its requests one slot at a time, at one rate; between hosts the adaptive rate does the rest
(``docs/hook.md``, "One account's rate limit").

The accepted rate a 429 may cut to is then the host's, as the gateway saw it. The file is named after
the connection, its API URL and rate, the user and the boot (``CLOCK_MONOTONIC``, which the slots are
measured on, starts again at each boot), and is created ``0600`` without following a link; a file
another user owns, or others may write, is not used, and a schedule more than :data:`MOST_AHEAD` seconds
ahead of the clock is not one this host wrote: it starts afresh. Where the file cannot be used (no
``fcntl``, no boot id, a directory not writable), each process keeps its own state, as it did before:
slower to agree, never wrong.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_smsww._http.adaptive import WINDOW_BUCKETS, RateState

# next start, paused until, changes, cuts; the rate's state: throttled at, climb from (nan: none),
# plateau after, first seen (nan: none), newest bucket, the counts.
_LAYOUT = struct.Struct(f"<ddqqddddq{WINDOW_BUCKETS}q")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
#: No slot or pause this host sets lies further ahead (a 429's longest ``Retry-After`` honoured is 120 s).
MOST_AHEAD = 3600.0


@dataclass
class Pace:
    """The schedule's state.

    :param next_start: the earliest start of the next paced request (monotonic seconds).
    :param paused_until: no request starts before this (a 429's ``Retry-After``).
    :param changes: pauses and cuts so far: a sleeper woken after a new one takes a new slot.
    :param cuts: rate cuts so far: a 429 for a request started before the last one is no news.
    :param rate: the adaptive rate's state (:class:`~airflow_provider_smsww._http.adaptive.RateState`).
    """

    next_start: float = 0.0
    paused_until: float = 0.0
    changes: int = 0
    cuts: int = 0
    rate: RateState = field(default_factory=RateState)

    def pack(self) -> bytes:
        rate = self.rate
        return _LAYOUT.pack(
            self.next_start,
            self.paused_until,
            self.changes,
            self.cuts,
            rate.throttled_at,
            math.nan if rate.climb_from is None else rate.climb_from,
            rate.plateau_after,
            math.nan if rate.first_seen is None else rate.first_seen,
            rate.newest_bucket,
            *rate.counts,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> Pace:
        """The state in ``raw``; a fresh one when ``raw`` is empty or short (a new file).

        :param raw: the file's bytes.
        """
        if len(raw) < _LAYOUT.size:
            return cls()
        fields = _LAYOUT.unpack(raw[: _LAYOUT.size])
        next_start, paused_until, changes, cuts = fields[:4]
        throttled_at, climb_from, plateau_after, first_seen = fields[4:8]
        rate = RateState(
            throttled_at=throttled_at,
            climb_from=None if math.isnan(climb_from) else climb_from,
            plateau_after=plateau_after,
            first_seen=None if math.isnan(first_seen) else first_seen,
            newest_bucket=fields[8],
            counts=list(fields[9:]),
        )
        return cls(next_start, paused_until, changes, cuts, rate)


class ProcessPace:
    """The schedule of one process (in memory)."""

    def __init__(self) -> None:
        self._pace = Pace()

    @contextmanager
    def hold(self) -> Iterator[Pace]:
        """The state, to read and change (the caller holds its own thread lock)."""
        yield self._pace


class HostPace:
    """The schedule every process of this host shares, in the file at ``path``.

    :param path: the file (created ``0600`` if missing; a link there is refused, and so is a file another
        user owns or others may write: :class:`PermissionError`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd, self._pid = self._open(), os.getpid()

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            os.close(fd)
            raise PermissionError(f"{self.path} is not this user's alone: the schedule stays in the process")
        return fd

    @contextmanager
    def hold(self) -> Iterator[Pace]:
        """The state under an exclusive ``flock`` (microseconds: no I/O but 144 bytes of a cached file),
        written back when changed."""
        import fcntl

        if self._pid != os.getpid():  # a forked child: a lock on the parent's open file is the parent's too
            self._fd, self._pid = self._open(), os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            before = os.pread(self._fd, _LAYOUT.size, 0)
            pace = Pace.unpack(before)
            if max(pace.next_start, pace.paused_until) > time.monotonic() + MOST_AHEAD:
                pace = Pace()
            yield pace
            after = pace.pack()
            if after != before:
                os.pwrite(self._fd, after, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def pace_for(conn_id: str, base_url: str, rate: float | None) -> ProcessPace | HostPace:
    """The schedule a connection's limiter keeps: the host's when the connection is paced and the host
    allows a shared file, else the process's own.

    :param conn_id: the connection's id.
    :param base_url: its API URL.
    :param rate: its ``rate_limit`` (None: not paced, so nothing to share).
    """
    if rate is None:
        return ProcessPace()
    try:
        import fcntl  # noqa: F401  (POSIX only)

        boot = _BOOT_ID.read_text().strip()
        key = f"{boot}|{os.getuid()}|{conn_id}|{base_url}|{rate!r}"
        name = "smsww-pace-" + hashlib.sha256(key.encode()).hexdigest()[:24]
        return HostPace(Path(tempfile.gettempdir()) / name)
    except (ImportError, OSError):
        return ProcessPace()
