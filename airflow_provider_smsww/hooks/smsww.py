"""SmsWwHook: the provider's API. Every call to Openapi's SMS Worldwide gateway goes through it.

The operator, sensor, trigger and notifier are thin layers over this hook, and a TaskFlow ``@task`` can
call it directly (see ``docs/hook.md``). Below it, the HTTP layer (:mod:`~airflow_provider_smsww._http.client`
for retries and error mapping, :mod:`~airflow_provider_smsww._http.auth` for token minting) is imported by
nothing else.

One-time codes are secrets: the model holds a code as a ``SecretStr`` (no repr, log line, summary or dump
shows it), and the hook gives it to Airflow's secrets masker as soon as it reads a message that carries
one, sent or read back, so that a caller who logs it by mistake sees ``***``. Airflow masks nothing
shorter than ``[logging] min_length_masked_secret`` (5 by default): a 4-character code relies on the
model alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from airflow_provider_smsww import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_smsww.arguments import as_entries
from airflow_provider_smsww.compat import BaseHook, aget_connection, amask_secret, mask_secret
from airflow_provider_smsww.concurrency import Progress, bounded, run_in_new_loop
from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwNotFoundError,
    SmsWwValidationError,
)
from airflow_provider_smsww.hooks.connection import aextra_dejson, client_settings
from airflow_provider_smsww.hooks.fanout import FanOut
from airflow_provider_smsww.hooks.money import LOW_CREDIT_ALERT_EUR, SCOPED_TOKEN_TTL, AccountMoney
from airflow_provider_smsww.models import Callback, Estimate, Message, Region, SendRequest
from airflow_provider_smsww.segments import analyse
from airflow_provider_smsww.validation import OtpParams, build_otp_request, build_request

if TYPE_CHECKING:
    from airflow_provider_smsww._http.client import AsyncSmsWwClient, SmsWwClient
    from airflow_provider_smsww.receipts import ReceiptStamp

T = TypeVar("T")


class SmsWwHook(BaseHook):
    """Send, price and read SMS through Openapi's SMS Worldwide API, sync and async, and the account's
    credit and per-task spending caps (through the
    :class:`~airflow_provider_smsww.hooks.money.AccountMoney` it holds).

    One pooled sync client and one pooled async client are created on first use, so the calls of one
    task share connections; close them with :meth:`close` / :meth:`aclose` (the provider's operators
    do). Connection fields are described in ``docs/hook.md``.

    :param smsww_conn_id: the Airflow connection, type ``smsww``.
    """

    conn_name_attr = "smsww_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "SMS Worldwide (Openapi)"

    def __init__(self, smsww_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smsww_conn_id = smsww_conn_id
        self._async_client: AsyncSmsWwClient | None = None
        #: The clients' settings, once the connection was read.
        self._settings: dict[str, Any] | None = None
        #: Set on the hook that :meth:`scoped` yields: its calls use this token and never mint another.
        self._scoped_token: str | None = None
        #: The money side of the connection's account: its credit and per-task capped tokens.
        self.money = AccountMoney(smsww_conn_id, self.log)

    # -- the connection -------------------------------------------------------------------------------

    def _client_kwargs(self, conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
        """The clients' settings from the connection; gives :attr:`money` the OAuth account, if any."""
        self._settings, self.money.account = client_settings(
            self.smsww_conn_id, conn, extra, self._scoped_token
        )
        return dict(self._settings)

    def _send_scopes(self, region: str) -> list[str]:
        from airflow_provider_smsww._http.auth import send_scopes

        return send_scopes((self._settings or {}).get("base_url", ""), region)

    def _with_token(self, token: str) -> SmsWwHook:
        """A hook like this one whose calls all use ``token`` (never re-minted), for :meth:`scoped`."""
        from airflow_provider_smsww._http.client import AsyncSmsWwClient

        child = type(self)(smsww_conn_id=self.smsww_conn_id)
        child._scoped_token, child.money.account = token, self.money.account
        child._settings = {**(self._settings or {}), "token": token, "minter": None}
        child._async_client = AsyncSmsWwClient(**child._settings)
        return child

    @cached_property
    def client(self) -> SmsWwClient:
        """The sync client (pooled), built from the connection on first use."""
        from airflow_provider_smsww._http.client import SmsWwClient

        conn = self.get_connection(self.smsww_conn_id)
        return SmsWwClient(**self._client_kwargs(conn, conn.extra_dejson))

    def get_conn(self) -> SmsWwClient:
        return self.client

    async def get_async_conn(self) -> AsyncSmsWwClient:
        """The async client (pooled). Built from the connection fetched the async way (safe in the
        triggerer), unless :meth:`run_async` already built it the sync way."""
        from airflow_provider_smsww._http.client import AsyncSmsWwClient

        if self._async_client is None:
            conn = await aget_connection(self.smsww_conn_id)
            kwargs = self._client_kwargs(conn, await aextra_dejson(conn))
            if self._async_client is None:  # another caller may have built it while this one awaited
                self._async_client = AsyncSmsWwClient(**kwargs)
        return self._async_client

    def open_async_client(self) -> None:
        """Build the async client from the connection read the sync way, for sync code that then runs
        its own event loop (under the task supervisor, sync code must not fetch the connection through
        the async comms). Use the client in one loop and close it there with :meth:`aclose`."""
        from airflow_provider_smsww._http.client import AsyncSmsWwClient

        conn = self.get_connection(self.smsww_conn_id)
        self._async_client = AsyncSmsWwClient(**self._client_kwargs(conn, conn.extra_dejson))

    def receipts_for(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> ReceiptStamp | None:
        """What stamps each message of a task with its receipt callback and credential, read from the
        connection the sync way; None when the connection does not switch receipts on (docs/receipts.md).

        :param dag_id: the DAG of the messages.
        :param run_id: their DAG run.
        :param task_id: their task.
        :param map_index: their task's map index (-1 when not mapped).
        :raises SmsWwError: ``receipts_url`` without a usable ``receipts_secret``.
        """
        conn = self.get_connection(self.smsww_conn_id)
        return self._stamp(conn.extra_dejson, dag_id, run_id, task_id, map_index)

    async def areceipts_for(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> ReceiptStamp | None:
        """:meth:`receipts_for`, the connection read the async way (the triggerer)."""
        conn = await aget_connection(self.smsww_conn_id)
        return self._stamp(await aextra_dejson(conn), dag_id, run_id, task_id, map_index)

    def _stamp(
        self, extra: dict[str, Any], dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> ReceiptStamp | None:
        from airflow_provider_smsww.receipts import Origin, ReceiptSettings, ReceiptStamp

        try:
            settings = ReceiptSettings.of_extra(extra)
        except ValueError as exc:
            raise SmsWwError(f"Connection {self.smsww_conn_id!r}: {exc}") from None
        if settings is None:
            return None
        origin = Origin(self.smsww_conn_id, dag_id, run_id, task_id, map_index, settings.asset)
        return ReceiptStamp(settings, origin)

    def run_async(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run async hook calls from sync code on a new event loop that ``execution_timeout`` still ends,
        with the client from :meth:`open_async_client`, closed before returning."""
        self.open_async_client()

        async def run() -> T:
            try:
                return await work()
            finally:
                await self.aclose()

        return run_in_new_loop(run())

    def __enter__(self) -> SmsWwHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sync client's pool (a later call opens a new one)."""
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    async def aclose(self) -> None:
        """Close the async client's pool (a later call opens a new one)."""
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    # -- the money side: credit and the per-task cap -------------------------------------------------

    def _read_money(self) -> AccountMoney:
        """:attr:`money`, after reading the connection (the sync way) if no client did yet."""
        if self._settings is None:
            conn = self.get_connection(self.smsww_conn_id)
            self._client_kwargs(conn, conn.extra_dejson)
        return self.money

    async def _aread_money(self) -> AccountMoney:
        """:attr:`money`, after reading the connection the async way (building the client) if needed."""
        if self._settings is None:
            await self.get_async_conn()
        return self.money

    def get_credit(self) -> Decimal | None:
        """The account's credit in EUR (OAuth v2 ``GET /wallet``); None without email + API key (logged
        once)."""
        return self._read_money().credit()

    async def aget_credit(self) -> Decimal | None:
        """Async twin of :meth:`get_credit`."""
        return await (await self._aread_money()).acredit()

    async def awarn_if_credit_low(self, threshold: Decimal = LOW_CREDIT_ALERT_EUR) -> Decimal | None:
        """For alerts, which send anyway: read the credit and log an error-level warning when it is
        below ``threshold`` EUR. Never raises; returns the credit, or None when it could not be read."""
        try:
            credit = await self.aget_credit()
        except SmsWwError as exc:
            self.log.warning("Could not read the SMS account credit (sending anyway): %s", exc.message)
            return None
        self.money.warn_if_low(credit, threshold)
        return credit

    @asynccontextmanager
    async def scoped(
        self,
        *,
        budget: Decimal | float | None = None,
        requests: int | None = None,
        region: str = "WW",
        ttl: int = SCOPED_TOKEN_TTL,
    ) -> AsyncIterator[SmsWwHook]:
        """A hook whose calls use a token minted for this block only: limited to the paths of a batch
        send in ``region`` and to the spec's ``limits`` (``walletAmount`` = ``budget`` EUR,
        ``walletRequests`` = ``requests`` paid sends), living ``ttl`` seconds, and revoked
        (``DELETE /tokens/{token}``) when the block ends, however it ends. A call past the cap fails
        with :class:`~airflow_provider_smsww.exceptions.SmsWwSpendingCapError`; the token is never
        re-minted on 401, which would reset the cap. With a token-only connection this hook itself is
        yielded (no cap; logged once).

        :param budget: EUR the token may spend (``walletAmount``); None for no amount limit.
        :param requests: paid requests the token may make (``walletRequests``); None for no limit.
        :param region: ``WW``, ``IT`` or ``ES``: the send path the token may call.
        :param ttl: seconds the token lives if revoking it fails.
        """
        money = await self._aread_money()
        account = money.checked_account()
        if account is None or self._settings is None:
            yield self
            return
        scopes = self._send_scopes(region)
        async with money.capped_token(account, scopes, budget=budget, requests=requests, ttl=ttl) as token:
            child = self._with_token(token)
            try:
                yield child
            finally:
                await child.aclose()
                child.close()

    # -- sending --------------------------------------------------------------------------------------

    def send_message(
        self,
        recipient: str,
        message: str,
        *,
        sender: str | None = None,
        region: Region = "WW",
        dry_run: bool = False,
        fail_on_multiple_messages: bool = False,
        callback: Callback | dict[str, Any] | None = None,
    ) -> Message:
        """Send one SMS (``POST /{region}-messages``), after the local checks of
        :func:`~airflow_provider_smsww.validation.build_request`.

        A real send is never retried when it may have reached the gateway: that raises
        :class:`~airflow_provider_smsww.exceptions.SmsWwSendUncertainError` (look it up before resending).

        :param recipient: E.164 number (spaces and dashes allowed).
        :param message: the text.
        :param sender: 3-11 letters, digits or spaces, not all digits; default "Openapi".
        :param region: ``WW``, ``IT`` or ``ES``.
        :param dry_run: validate and price only (free).
        :param fail_on_multiple_messages: refuse a text longer than one part.
        :param callback: the API's callback object (``url``, ``method``, ``retry``, ``headers``, ``custom``).
        """
        request = build_request(
            recipient,
            message,
            sender=sender,
            region=region,
            dry_run=dry_run,
            fail_on_multiple_messages=fail_on_multiple_messages,
            callback=callback,
        )
        return self.send_request(request, region)

    async def asend_message(
        self,
        recipient: str,
        message: str,
        *,
        sender: str | None = None,
        region: Region = "WW",
        dry_run: bool = False,
        fail_on_multiple_messages: bool = False,
        callback: Callback | dict[str, Any] | None = None,
    ) -> Message:
        """Async twin of :meth:`send_message`."""
        request = build_request(
            recipient,
            message,
            sender=sender,
            region=region,
            dry_run=dry_run,
            fail_on_multiple_messages=fail_on_multiple_messages,
            callback=callback,
        )
        return await self.asend_request(request, region)

    def send_request(self, request: SendRequest, region: Region = "WW") -> Message:
        """Send a :class:`~airflow_provider_smsww.models.SendRequest` the caller has already checked."""
        return self.client.send_message(request, region)

    async def asend_request(self, request: SendRequest, region: Region = "WW") -> Message:
        """Async twin of :meth:`send_request`."""
        return await (await self.get_async_conn()).send_message(request, region)

    def estimate(self, request: SendRequest, region: Region = "WW") -> Estimate:
        """Price and validate one message with a dry run (free). Raises :class:`SmsWwValidationError`
        when the API refuses it or would block it, :class:`SmsWwDryRunIgnoredError` when the gateway
        answers it as a real send."""
        answer = self.send_request(_as_dry_run(request), region)
        return _estimate_from(request, region, answer)

    async def aestimate(self, request: SendRequest, region: Region = "WW") -> Estimate:
        """Async twin of :meth:`estimate`."""
        answer = await self.asend_request(_as_dry_run(request), region)
        return _estimate_from(request, region, answer)

    # -- one-time codes and many texts --------------------------------------------------------------

    def send_otp(self, recipient: str, **params: Unpack[OtpParams]) -> Message:
        """Send a one-time code (``POST /otp``): the gateway makes it, sends it from "OTP MOBILE" in the
        recipient's language at WW prices, and answers with the message and its code
        (``message.otp_code()``), masked in Airflow's logs from then on. Returning the code (or the
        message) from a task puts it in XCom: return ``message.summary()``.

        Parameters outside the spec are refused before any request, naming each
        (:func:`~airflow_provider_smsww.validation.build_otp_request`, which holds the defaults). A real
        send is never retried when it may have reached the gateway: that raises
        :class:`~airflow_provider_smsww.exceptions.SmsWwSendUncertainError`; a dry run is retried like a read.

        :param recipient: E.164 number (spaces and dashes allowed).
        :param params: ``length``: characters of the code, 4 to 10 (default 5); ``alphanumeric``: digits
            and capital letters instead of digits only (default False); ``cache_seconds``: 0 to 600
            (default 0), within which the same number gets the same code again; ``dry_run``: validate
            and price only (free; nothing is sent, the code in the answer is not cached); ``callback``:
            the API's callback object, checked as for sends.
        """
        # Checked before the client is built: bad input reads no connection.
        request = build_otp_request(recipient, **params)
        return _masked(self.client.send_otp(request))

    async def asend_otp(self, recipient: str, **params: Unpack[OtpParams]) -> Message:
        """Async twin of :meth:`send_otp`, with the same parameters.

        :param recipient: E.164 number (spaces and dashes allowed).
        :param params: ``length``, ``alphanumeric``, ``cache_seconds``, ``dry_run``, ``callback``, as for
            :meth:`send_otp`.
        """
        request = build_otp_request(recipient, **params)
        return await _amasked(await (await self.get_async_conn()).send_otp(request))

    def send_many(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        sender: str | None = None,
        region: Region = "WW",
        max_concurrency: int = 20,
        dry_run: bool = False,
        fail_on_multiple_messages: bool = False,
        callback: Callback | dict[str, Any] | None = None,
    ) -> list[Message | SmsWwError]:
        """Send a text per recipient: ``messages`` is a list of ``{"recipient": ..., "message": ...,
        "sender": ...}`` (``sender`` optional). Returns one result per entry, in entry order: the
        :class:`~airflow_provider_smsww.models.Message`, or the :class:`SmsWwError` that entry met (a
        local check, the API's refusal, an unknown outcome that is not resent). An exact duplicate (same
        number, sender and text) is sent once, and gets the same result. After a refusal of the account
        (credentials, credit) no further entry is sent: each gets that error. A list that is not a list
        of such dicts raises :class:`~airflow_provider_smsww.exceptions.SmsWwGateError` before any request.

        :param messages: the entries.
        :param sender: the sender of the entries that name none (default "Openapi").
        :param region: ``WW``, ``IT`` or ``ES``.
        :param max_concurrency: requests in flight at once.
        :param dry_run: validate and price only (free).
        :param fail_on_multiple_messages: refuse a text longer than one part.
        :param callback: the API's callback object, the same for every message.
        """
        return self.run_async(
            lambda: self.asend_many(
                messages,
                sender=sender,
                region=region,
                max_concurrency=max_concurrency,
                dry_run=dry_run,
                fail_on_multiple_messages=fail_on_multiple_messages,
                callback=callback,
            )
        )

    async def asend_many(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        sender: str | None = None,
        region: Region = "WW",
        max_concurrency: int = 20,
        dry_run: bool = False,
        fail_on_multiple_messages: bool = False,
        callback: Callback | dict[str, Any] | None = None,
    ) -> list[Message | SmsWwError]:
        """Async twin of :meth:`send_many`, with the same parameters (each as :meth:`send_many` says).

        :param messages: the entries, each ``{recipient, message, sender?}``.
        """
        entries = as_entries(messages)
        results: list[Message | SmsWwError | None] = [None] * len(entries)
        sends = _distinct_sends(
            entries,
            results,
            sender=sender,
            region=region,
            fail_on_multiple_messages=fail_on_multiple_messages,
            callback=callback,
        )
        progress = Progress(len(sends), "sent (dry run)" if dry_run else "sent")
        fanout = FanOut(self, _DistinctSends(region), max_concurrency, {}, dry_run=dry_run)

        async def send(distinct: _DistinctSend) -> None:
            result: Message | SmsWwError
            if (fatal := fanout.fatal) is not None and fanout.stopped(distinct):
                result = fatal
            else:
                try:
                    message = await fanout.send(distinct)
                except SmsWwError as exc:
                    result = exc
                else:
                    result = message if message is not None else fanout.refused[distinct.key]
                progress.tick()
            for index in distinct.indexes:
                results[index] = result

        await fanout.run(sends, send)
        failed = sum(isinstance(r, SmsWwError) for r in results)
        if failed:
            self.log.warning(
                "%d of %d message(s) not sent; see the result of each entry", failed, len(entries)
            )
        return [r for r in results if r is not None]

    # -- reading --------------------------------------------------------------------------------------

    def get_message(self, message_id: str) -> Message:
        """``GET /messages/{id}``; a 404 names the id and the connection."""
        try:
            return _masked(self.client.get_message(message_id))
        except SmsWwNotFoundError:
            raise self._not_found(message_id) from None

    async def aget_message(self, message_id: str) -> Message:
        """Async twin of :meth:`get_message`."""
        try:
            return await _amasked(await (await self.get_async_conn()).get_message(message_id))
        except SmsWwNotFoundError:
            raise self._not_found(message_id) from None

    def get_messages(
        self, ids: Sequence[str], *, max_concurrency: int = 10, by_listing: bool = False
    ) -> dict[str, Message]:
        """Read many messages concurrently (the API has no bulk read by id); sync twin of
        :meth:`aget_messages`, on its own event loop."""
        return self.run_async(
            lambda: self.aget_messages(ids, max_concurrency=max_concurrency, by_listing=by_listing)
        )

    async def aget_messages(
        self,
        ids: Sequence[str],
        *,
        max_concurrency: int = 10,
        into: dict[str, Message] | None = None,
        by_listing: bool = False,
    ) -> dict[str, Message]:
        """Read ``ids``, at most ``max_concurrency`` at a time. After the first error no new read starts
        and the error is raised; pass ``into`` to keep what was read before it.

        :param ids: message ids.
        :param max_concurrency: requests in flight at once.
        :param into: a dict to store each message in as it arrives (returned); with ``by_listing``,
            earlier versions there tell how deep the listing must go.
        :param by_listing: read ``GET /messages`` pages first and GET by id only what they do not show
            (many ids: ~1 request per 100 messages; see :mod:`~airflow_provider_smsww.hooks.listing`).
        """
        found: dict[str, Message] = {} if into is None else into
        client = await self.get_async_conn()  # once, before the reads fan out
        if by_listing:
            from airflow_provider_smsww.hooks.listing import read_by_listing

            page, one = client.list_page, self.aget_message
            await read_by_listing(ids, found, fetch_page=page, read_one=one, max_concurrency=max_concurrency)
            await _amask_all(found.values())
            return found

        async def read(message_id: str) -> None:
            found[message_id] = await self.aget_message(message_id)

        await bounded(ids, read, max_concurrency)
        return found

    def list_messages(self, *, page_size: int = 100, max_items: int | None = None) -> Iterator[Message]:
        """Every message on the account, newest first on the gateway, page by page (``GET /messages``).

        :param page_size: messages per page (``limit``).
        :param max_items: stop after this many.
        """
        return map(_masked, self.client.list_messages(page_size=page_size, max_items=max_items))

    async def alist_messages(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncIterator[Message]:
        """Async twin of :meth:`list_messages` (an async iterator)."""
        client = await self.get_async_conn()
        async for message in client.list_messages(page_size=page_size, max_items=max_items):
            yield await _amasked(message)

    def _not_found(self, message_id: str) -> SmsWwNotFoundError:
        return SmsWwNotFoundError(
            f"SMS message {message_id} was not found (404): check the id and that connection "
            f"{self.smsww_conn_id!r} points at the account and host (production or sandbox) that sent it.",
            status_code=404,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's Test button: reads one message, which proves host, credentials and scope."""
        try:
            next(self.list_messages(page_size=1, max_items=1), None)
        except SmsWwError as exc:
            return False, str(exc)
        finally:
            self.close()
        return True, "Connection OK: the SMS API accepted the credentials."


@dataclass(frozen=True)
class _DistinctSend:
    """One distinct (number, sender, text) of ``send_many``: its request, and the entries that send it
    (an exact duplicate is sent once and gets the same result)."""

    key: str
    request: SendRequest
    indexes: list[int]


@dataclass(frozen=True)
class _DistinctSends:
    """The :class:`~airflow_provider_smsww.hooks.fanout.Outbox` of ``send_many``: each distinct send's
    own request, to the region's send path."""

    region: Region

    def request(self, recipient: _DistinctSend, *, dry_run: bool) -> SendRequest:
        return _as_dry_run(recipient.request) if dry_run else recipient.request


def _distinct_sends(
    entries: Sequence[Mapping[str, Any]],
    results: list[Message | SmsWwError | None],
    *,
    sender: str | None,
    region: Region,
    fail_on_multiple_messages: bool,
    callback: Callback | dict[str, Any] | None,
) -> list[_DistinctSend]:
    """Check each entry locally (:func:`~airflow_provider_smsww.validation.build_request`) and group the
    exact duplicates; an entry refused here gets its error in ``results`` at its index.

    :param entries: the entries, each ``{recipient, message, sender?}``.
    :param results: one slot per entry.
    :param sender: the sender of the entries that name none.
    :param region: ``WW``, ``IT`` or ``ES``.
    :param fail_on_multiple_messages: refuse a text longer than one part.
    :param callback: the API's callback object, the same for every message.
    """
    sends: dict[str, _DistinctSend] = {}
    for index, entry in enumerate(entries):
        try:
            request = build_request(
                entry["recipient"],
                entry["message"],
                sender=entry.get("sender") or sender,
                region=region,
                fail_on_multiple_messages=fail_on_multiple_messages,
                callback=callback,
            )
        except SmsWwError as exc:
            results[index] = exc
            continue
        # The number and the sender hold no \x1f, so the key tells every (number, sender, text) apart.
        key = "\x1f".join((request.recipient, request.sender or "", request.message))
        sends.setdefault(key, _DistinctSend(key, request, [])).indexes.append(index)
    return list(sends.values())


def _masked(message: Message) -> Message:
    """``message``, its code (if any) masked in Airflow's logs from now on (sync code only)."""
    if (code := message.otp_code()) is not None:
        mask_secret(code)  # no name: a name the masker does not find sensitive would skip the mask
    return message


async def _amasked(message: Message) -> Message:
    """Async twin of :func:`_masked`, safe in the triggerer's event loop."""
    if (code := message.otp_code()) is not None:
        await amask_secret(code)
    return message


async def _amask_all(messages: Iterable[Message]) -> None:
    """:func:`_amasked` for each message (those read from a listing page)."""
    for message in messages:
        await _amasked(message)


def _dry_run_refusal(answer: Message, recipient: str, region: str) -> str | None:
    """What a dry run's answer says beyond its status: raises :class:`SmsWwDryRunIgnoredError` when the
    gateway reports it as a real send (``options.dryRun`` explicitly false: stop before anything else is
    sent), returns the refusal when it says the message would be blocked, else None."""
    if answer.options_say_real_send:
        raise SmsWwDryRunIgnoredError(
            f"{region}-messages answered a dry run for {recipient} as a real send (options.dryRun false, "
            f"message id {answer.id or '?'}): stopping before anything else is sent. Is the connection's "
            "host the SMS API, with nothing in between that drops the options?"
        )
    if answer.blocklisted:
        return f"the API would block this message: {answer.blocklisted_reason or 'blocklisted'}"
    return None


def _as_dry_run(request: SendRequest) -> SendRequest:
    """The same request with ``options.dryRun`` set: priced and validated, never sent."""
    options = request.options.model_copy(update={"dry_run": True})
    return request.model_copy(update={"options": options})


def _estimate_from(request: SendRequest, region: str, answer: Message) -> Estimate:
    """The estimate a dry run's answer gives (parts, encoding, price when priced); raises
    :class:`SmsWwValidationError` when the API would block the message."""
    if refusal := _dry_run_refusal(answer, request.recipient, region):
        raise SmsWwValidationError(refusal)
    parts = answer.message_count or analyse(request.message).parts
    price = answer.total_price or (answer.price * parts if answer.price else None)
    return Estimate(request.recipient, parts, answer.encoding, price or None)
