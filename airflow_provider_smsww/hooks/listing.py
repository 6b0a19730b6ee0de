"""Reading many messages by listing pages: ``GET /messages`` (newest first, 100 a page) from the first
page that can hold a tracked message down to the oldest, then ``GET /messages/{id}`` only for the ids
the listing did not show.

Why: the API has no bulk read by id, so a sensor tracking 1,000 messages would otherwise make 1,000
requests per poll; ten pages cover them when they are the account's newest. A batch sent early in a
campaign lies deep (100,000 newer messages are 1,000 pages): the walk seeks its first page by doubling,
then halving, the page index against the newest tracked message's creation time (known from an earlier
read, or from one GET of the last id given), about 20 pages at that depth. The walk never costs much
more than reading by id: it stops when a page would cost as much as one GET per id still missing or
the pages read reach the number of ids, when it has passed the oldest tracked message (known from an
earlier read), at an empty or short page, and as soon as the listing is not newest first (the spec does
not promise an order). What it has not found is read by id, with the same semantics: a 404 there names
the id.

No HTTP here: the hook passes the two calls (one page, one message), so this module stays a rule.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from airflow_provider_smsww.concurrency import bounded
from airflow_provider_smsww.models import PAGE_SIZE, Message, as_utc

#: Messages per page (the API's ``limit``; the spec's example and default).
#: Below this many ids, one GET per id costs about what a listing page does: read by id.
LISTING_MIN_IDS = 20
#: Messages created at the same moment may be listed slightly out of order.
LISTING_ORDER_TOLERANCE = timedelta(seconds=2)

FetchPage = Callable[[int, int], Awaitable[list[dict[str, Any]]]]
ReadOne = Callable[[str], Awaitable[Message]]


class NewestFirst:
    """Checks, entry by entry, that a listing is newest first (within :data:`LISTING_ORDER_TOLERANCE`);
    entries without a creation time are not judged. ``seen_descending`` says whether the listing has
    shown at least one step back in time (proof of the order, not only no disproof of it)."""

    def __init__(self) -> None:
        self.previous: datetime | None = None
        self.in_order = True
        self.seen_descending = False

    def see(self, created: datetime | None) -> None:
        if created is None:
            return
        if self.previous is not None and created > self.previous + LISTING_ORDER_TOLERANCE:
            self.in_order = False
        elif self.previous is not None and created < self.previous:
            self.seen_descending = True
        self.previous = created


def _created(entry: Mapping[str, Any]) -> datetime | None:
    value = entry.get("createdAt")
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


@dataclass
class ListingReport:
    """What one read cost: listing pages and by-id GETs (the benchmark's "calls per message")."""

    pages: int = 0
    gets: int = 0

    @property
    def calls(self) -> int:
        return self.pages + self.gets


def oldest_known(ids: Sequence[str], known: Mapping[str, Message]) -> datetime | None:
    """The creation time of the oldest of ``ids``, when an earlier read gave every one of them."""
    times = [as_utc(m.created_at) if (m := known.get(i)) is not None else None for i in ids]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


async def read_by_listing(
    ids: Sequence[str],
    into: dict[str, Message],
    *,
    fetch_page: FetchPage,
    read_one: ReadOne,
    max_concurrency: int,
    page_size: int = PAGE_SIZE,
) -> ListingReport:
    """Read ``ids`` into ``into`` (see module docstring); pages are fetched up to ``max_concurrency``
    at once, never more than the ids still missing need (n ids need at least n / ``page_size`` pages).

    Errors propagate as the page or GET raised them; what was read before stays in ``into``.

    :param ids: message ids to read.
    :param into: where each message is stored; earlier versions there give the oldest creation time.
    :param fetch_page: ``(skip, limit)`` -> the raw entries of one ``GET /messages`` page.
    :param read_one: ``GET /messages/{id}`` (raises the not-found error naming the id).
    :param max_concurrency: requests in flight at once.
    :param page_size: entries per page.
    """
    report = ListingReport()
    missing = dict.fromkeys(ids)

    async def read(message_id: str) -> None:
        report.gets += 1
        into[message_id] = await read_one(message_id)
        missing.pop(message_id, None)

    walk = _Walk(ids, missing, into, fetch_page, report, page_size)
    ceiling = newest_known(list(missing), into)
    if ceiling is None and missing:  # a first read: the front page says whether the ids are near the top
        wanted = len(missing)
        walk.take(await walk.page_at(0))
        if walk.walking and len(missing) == wanted and wanted >= LISTING_MIN_IDS:
            await read(ids[-1])  # none there: the last id given is about the newest sent, a place to seek
            if (ceiling := newest_known(ids[-1:], into)) is not None:
                await walk.seek(ceiling, start=1)
    elif ceiling is not None and missing:
        await walk.seek(ceiling, start=0)
    await walk.run(max_concurrency)
    await bounded(list(missing), read, max_concurrency)
    return report


class _Walk:
    """One walk down the listing: where it stands (``skip``), what it has found, when to stop."""

    def __init__(
        self,
        ids: Sequence[str],
        missing: dict[str, None],
        into: dict[str, Message],
        fetch_page: FetchPage,
        report: ListingReport,
        page_size: int,
    ) -> None:
        self.ids, self.missing, self.into = ids, missing, into
        self.fetch_page, self.report, self.page_size = fetch_page, report, page_size
        self.floor = oldest_known(list(missing), into)
        self.order = NewestFirst()
        self.skip = 0
        self.walking = True

    def budget(self) -> int:
        """Pages worth fetching now: while cheaper than one GET per id still missing, and never more
        pages in all than there are ids (so at most twice what reading by id would cost)."""
        return min(len(self.missing) - 1, len(self.ids) - self.report.pages)

    async def page_at(self, index: int) -> list[dict[str, Any]]:
        page = await self.fetch_page(index * self.page_size, self.page_size)
        self.report.pages += 1
        return page

    def take(self, page: list[dict[str, Any]]) -> None:
        """Scan one page (the next in the walk); stop the walk when later pages cannot help."""
        passed = _scan(page, self.missing, self.into, self.order, self.floor)
        self.skip += self.page_size
        # An empty or short page is the end (or a gateway capping ``limit``: then later pages were
        # fetched with gaps); past the oldest tracked message or out of order, pages cannot help.
        if passed or len(page) < self.page_size or not self.order.in_order:
            self.walking = False

    async def seek(self, ceiling: datetime, *, start: int) -> None:
        """Go on from the first page (``start`` or deeper) not wholly newer than ``ceiling``, the newest
        tracked message: by doubling, then halving, the page index, so a batch under 100,000 newer
        messages costs about 20 pages instead of 1,000. A page wholly newer holds none of the tracked
        messages whatever the order; if the listing is not newest first, the pages skipped may have, and
        what the walk misses is read by id, as always.

        :param ceiling: the creation time of the newest tracked message (known or probed).
        :param start: the first page index to look at (pages before it are read already).
        """

        def newer(page: list[dict[str, Any]]) -> bool:
            return len(page) == self.page_size and all(
                (t := _created(entry)) is not None and t > ceiling + LISTING_ORDER_TOLERANCE for entry in page
            )

        below, index = start - 1, start
        page = await self.page_at(index)
        while newer(page) and self.budget() > 0:
            below, index = index, max(1, 2 * index)
            page = await self.page_at(index)
        while index - below > 1 and self.budget() > 0:
            middle = (below + index) // 2
            probe = await self.page_at(middle)
            if newer(probe):
                below = middle
            else:
                index, page = middle, probe
        self.skip = index * self.page_size
        self.take(page)

    async def run(self, max_concurrency: int) -> None:
        """Walk on, ``max_concurrency`` pages at a time, until a stopping rule or the budget ends it."""
        while self.walking and self.missing:
            batch = min(math.ceil(len(self.missing) / self.page_size), max(1, max_concurrency), self.budget())
            if batch <= 0:
                return
            pages: dict[int, list[dict[str, Any]]] = {}
            first = self.skip // self.page_size

            async def fetch(k: int, into_pages: dict[int, Any] = pages, first: int = first) -> None:
                into_pages[k] = await self.page_at(first + k)

            error: Exception | None = None
            try:
                await bounded(range(batch), fetch, max_concurrency)
            except Exception as exc:  # keep the pages that arrived before it (a poll counts them)
                error = exc
            for k in range(batch):
                if k not in pages or not self.walking:
                    break
                self.take(pages[k])
            if error is not None:
                raise error


def newest_known(ids: Sequence[str], known: Mapping[str, Message]) -> datetime | None:
    """The creation time of the newest of ``ids`` an earlier read gave, if any."""
    times = [as_utc(m.created_at) for i in ids if (m := known.get(i)) is not None and m.created_at]
    return max(times, default=None)


def _scan(
    page: Sequence[Mapping[str, Any]],
    missing: dict[str, None],
    into: dict[str, Message],
    order: NewestFirst,
    floor: datetime | None,
) -> bool:
    """Take the tracked messages of one page; True once the page is older than ``floor``."""
    passed = False
    for entry in page:
        created = _created(entry)
        order.see(created)
        message_id = entry.get("id")
        if isinstance(message_id, str) and message_id in missing:
            try:
                into[message_id] = Message.model_validate(entry)
            except ValidationError:
                continue  # unreadable here: the GET by id decides (and reports) it
            del missing[message_id]
        if floor is not None and created is not None and created < floor - LISTING_ORDER_TOLERANCE:
            passed = True
    return passed
