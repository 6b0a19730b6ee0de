"""The money side of :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook`: the account's credit and
a per-task token whose spending cap the gateway enforces. Both need the connection's account email
(login) and ``api_key`` extra, because they are OAuth v2 calls with HTTP Basic; a token-only
connection gets ``None`` credit and no cap, with one info line saying how to enable them.
``docs/money.md`` tells the whole money path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.compat import mask_secret
from airflow_provider_smsww.exceptions import SmsWwError

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook

#: An :class:`airflow_provider_smsww._http.auth.OAuthAccount` (only ``hooks/smsww.py`` imports the HTTP layer).
OAuthAccount = Any

#: Below this credit (EUR) the notifier logs a loud warning before it sends: a worldwide send needs
#: 1 EUR per part on hand, so ten one-part alerts' worth is left at most before alerts start failing.
LOW_CREDIT_ALERT_EUR = Decimal(10)
#: Lifetime of a per-task token when the caller gives none: an hour, not the account default.
SCOPED_TOKEN_TTL = 3600


class WalletMixin:
    """Credit and per-task tokens, mixed into the hook. ``_client_kwargs`` of the hook sets
    ``_account`` and ``_settings`` whenever it reads the connection; the hook's ``_send_scopes`` and
    ``_with_token`` build the capped hook (only ``hooks/smsww.py`` imports the HTTP layer)."""

    smsww_conn_id: str
    log: Any
    _account: OAuthAccount | None = None
    _settings: dict[str, Any] | None = None
    #: Set on the hook that :meth:`scoped` yields: its calls use this token and never mint another.
    _scoped_token: str | None = None
    _told_no_account = False

    def _account_from_connection(self) -> OAuthAccount | None:
        if self._settings is None:
            hook: Any = self
            conn = hook.get_connection(self.smsww_conn_id)
            hook._client_kwargs(conn, conn.extra_dejson)
        return self._note_if_no_account()

    async def _aaccount_from_connection(self) -> OAuthAccount | None:
        if self._settings is None:
            hook: Any = self
            await hook.get_async_conn()  # reads the connection the async way, builds the client
        return self._note_if_no_account()

    def _note_if_no_account(self) -> OAuthAccount | None:
        if self._account is None and not self._told_no_account:
            self._told_no_account = True
            self.log.info(
                "Connection %r has a token only: the account credit cannot be checked before sending and "
                "the gateway cannot cap this task's spending. To enable both, set the connection's login "
                "to the account email and its 'api_key' extra (see docs/money.md).",
                self.smsww_conn_id,
            )
        return self._account

    # -- credit ---------------------------------------------------------------------------------------

    def get_credit(self) -> Decimal | None:
        """The account's credit in EUR (OAuth v2 ``GET /wallet``), or None when the connection has no
        email + API key (logged once, at info)."""
        account = self._account_from_connection()
        return None if account is None else account.get_wallet().credit

    async def aget_credit(self) -> Decimal | None:
        """Async twin of :meth:`get_credit`."""
        account = await self._aaccount_from_connection()
        return None if account is None else (await account.aget_wallet()).credit

    async def awarn_if_credit_low(self, threshold: Decimal = LOW_CREDIT_ALERT_EUR) -> Decimal | None:
        """For alerts, which send anyway: read the credit and log an error-level warning when it is
        below ``threshold`` EUR. Never raises (a failed read is logged as a warning); returns the
        credit, or None when it could not be read."""
        try:
            credit = await self.aget_credit()
        except SmsWwError as exc:
            self.log.warning("Could not read the SMS account credit (sending anyway): %s", exc.message)
            return None
        if credit is not None and credit < threshold:
            self.log.error(
                "LOW SMS CREDIT: %.2f EUR left on the account behind connection %r (warning below %s EUR). "
                "Worldwide sends need 1 EUR per part on hand: top up before alerts start failing.",
                credit,
                self.smsww_conn_id,
                threshold,
            )
        return credit

    # -- the per-task cap -----------------------------------------------------------------------------

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
        account = await self._aaccount_from_connection()
        if account is None or self._settings is None:
            yield self  # type: ignore[misc]
            return
        limits: dict[str, Any] = {}
        if budget is not None:
            limits["walletAmount"] = float(budget)
        if requests is not None:
            limits["walletRequests"] = int(requests)
        hook: Any = self
        minted = await account.amint(hook._send_scopes(region), ttl, limits)
        secret = minted.token.get_secret_value()
        mask_secret(secret)
        self.log.info(
            "Per-task token minted: limits %s, expires %s", minted.limits or limits, minted.expire_at
        )
        child = hook._with_token(secret)
        try:
            yield child
        finally:
            await child.aclose()
            child.close()
            try:
                await account.arevoke(secret)
                self.log.info("Per-task token revoked")
            except SmsWwError as exc:
                self.log.warning(
                    "Could not revoke the per-task token (%s); it expires at %s",
                    exc.message,
                    minted.expire_at,
                )
