"""SmsWwHook: the provider's API. Every call to Openapi's SMS Worldwide gateway goes through it.

The operator, sensor, trigger and notifier are thin layers over this hook, and a TaskFlow ``@task`` can
call it directly (see ``docs/hook.md``). Below it, the HTTP layer (:mod:`~airflow_provider_smsww._http.client`
for retries and error mapping, :mod:`~airflow_provider_smsww._http.auth` for token minting) is imported by
nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_smsww import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_smsww.compat import BaseHook, aget_connection
from airflow_provider_smsww.concurrency import bounded
from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwNotFoundError,
    SmsWwValidationError,
)
from airflow_provider_smsww.hooks.connection import aextra_dejson, client_settings
from airflow_provider_smsww.hooks.wallet import WalletMixin
from airflow_provider_smsww.models import Callback, Estimate, Message, Region, SendRequest
from airflow_provider_smsww.validation import build_request

if TYPE_CHECKING:
    from airflow_provider_smsww._http.client import AsyncSmsWwClient, SmsWwClient

T = TypeVar("T")


def dry_run_refusal(answer: Message, recipient: str, region: str) -> str | None:
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


class SmsWwHook(WalletMixin, BaseHook):
    """Send, price and read SMS through Openapi's SMS Worldwide API, sync and async; the account's
    credit and per-task spending caps come from :class:`~airflow_provider_smsww.hooks.wallet.WalletMixin`.

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

    # -- the connection -------------------------------------------------------------------------------

    def _client_kwargs(self, conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
        """The clients' settings from the connection; keeps the OAuth account for the money calls."""
        self._settings, self._account = client_settings(self.smsww_conn_id, conn, extra, self._scoped_token)
        return dict(self._settings)

    def _send_scopes(self, region: str) -> list[str]:
        from airflow_provider_smsww._http.auth import send_scopes

        return send_scopes((self._settings or {}).get("base_url", ""), region)

    def _with_token(self, token: str) -> SmsWwHook:
        """A hook like this one whose calls all use ``token`` (never re-minted), for :meth:`scoped`."""
        from airflow_provider_smsww._http.client import AsyncSmsWwClient

        child = type(self)(smsww_conn_id=self.smsww_conn_id)
        child._scoped_token, child._account = token, self._account
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

    def run_async(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run async hook calls from sync code (an operator's ``execute``, a poke) on a new event loop,
        with the client from :meth:`open_async_client`, closed before returning."""
        self.open_async_client()

        async def run() -> T:
            try:
                return await work()
            finally:
                await self.aclose()

        return asyncio.run(run())

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
        answer = self.send_request(_dry(request), region)
        return _estimate(request, region, answer)

    async def aestimate(self, request: SendRequest, region: Region = "WW") -> Estimate:
        """Async twin of :meth:`estimate`."""
        answer = await self.asend_request(_dry(request), region)
        return _estimate(request, region, answer)

    # -- reading --------------------------------------------------------------------------------------

    def get_message(self, message_id: str) -> Message:
        """``GET /messages/{id}``; a 404 names the id and the connection."""
        try:
            return self.client.get_message(message_id)
        except SmsWwNotFoundError:
            raise self._not_found(message_id) from None

    async def aget_message(self, message_id: str) -> Message:
        """Async twin of :meth:`get_message`."""
        try:
            return await (await self.get_async_conn()).get_message(message_id)
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
        return self.client.list_messages(page_size=page_size, max_items=max_items)

    async def alist_messages(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncIterator[Message]:
        """Async twin of :meth:`list_messages` (an async iterator)."""
        client = await self.get_async_conn()
        async for message in client.list_messages(page_size=page_size, max_items=max_items):
            yield message

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


def _dry(request: SendRequest) -> SendRequest:
    options = request.options.model_copy(update={"dry_run": True})
    return request.model_copy(update={"options": options})


def _estimate(request: SendRequest, region: str, answer: Message) -> Estimate:
    if refusal := dry_run_refusal(answer, request.recipient, region):
        raise SmsWwValidationError(refusal)
    from airflow_provider_smsww.segments import analyse

    parts = answer.message_count or analyse(request.message).parts
    price = answer.total_price or (answer.price * parts if answer.price else None)
    return Estimate(request.recipient, parts, answer.encoding, price or None)
