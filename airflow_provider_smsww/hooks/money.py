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
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_smsww.compat import mask_secret
from airflow_provider_smsww.exceptions import SmsWwError

if TYPE_CHECKING:
    from airflow_provider_smsww._http.auth import OAuthAccount

#: Below this credit (EUR) the notifier logs a loud warning before it sends: a worldwide send needs
#: 1 EUR per part on hand, so ten one-part alerts' worth is left at most before alerts start failing.
LOW_CREDIT_ALERT_EUR = Decimal(10)
#: Lifetime of a per-task token when the caller gives none: an hour, not the account default.
SCOPED_TOKEN_TTL = 3600


class Log(Protocol):
    """What :class:`AccountMoney` needs of the hook's logger (Airflow's or the standard library's)."""

    def info(self, msg: str, /, *args: object) -> object: ...

    def warning(self, msg: str, /, *args: object) -> object: ...

    def error(self, msg: str, /, *args: object) -> object: ...


class AccountMoney:
    """The money side of the account behind one hook's connection: its credit and its per-task capped
    tokens. The hook holds one and sets :attr:`account` whenever it reads the connection (None for a
    token only).

    :param conn_id: the connection, named in the log lines.
    :param log: the hook's logger.
    """

    def __init__(self, conn_id: str, log: Log) -> None:
        self.conn_id, self.log = conn_id, log
        self.account: OAuthAccount | None = None
        self._told_no_account = False

    def checked_account(self) -> OAuthAccount | None:
        """The account, or None after saying once (at info) how to enable credit and caps."""
        if self.account is None and not self._told_no_account:
            self._told_no_account = True
            self.log.info(
                "Connection %r is token-only: no credit check, no gateway spending cap (docs/money.md).",
                self.conn_id,
            )
        return self.account

    def credit(self) -> Decimal | None:
        """The account's credit in EUR (OAuth v2 ``GET /wallet``), or None without an account."""
        account = self.checked_account()
        return None if account is None else account.get_wallet().credit

    async def acredit(self) -> Decimal | None:
        """Async twin of :meth:`credit`."""
        account = self.checked_account()
        return None if account is None else (await account.aget_wallet()).credit

    def warn_if_low(self, credit: Decimal | None, threshold: Decimal) -> None:
        """Log an error-level warning when ``credit`` is below ``threshold`` EUR (alerts send anyway)."""
        if credit is not None and credit < threshold:
            self.log.error(
                "LOW SMS CREDIT: %.2f EUR left on the account behind connection %r (warning below %s EUR). "
                "Worldwide sends need 1 EUR per part on hand: top up before alerts start failing.",
                credit,
                self.conn_id,
                threshold,
            )

    @asynccontextmanager
    async def capped_token(
        self,
        account: OAuthAccount,
        scopes: list[str],
        *,
        budget: Decimal | float | None,
        requests: int | None,
        ttl: int,
    ) -> AsyncIterator[str]:
        """A token minted for the block only, with the spec's ``limits`` (``walletAmount`` = ``budget``
        EUR, ``walletRequests`` = ``requests``), masked in the logs and revoked when the block ends,
        however it ends (a failed revocation is logged: the token expires after ``ttl`` seconds).

        :param account: the account that mints it.
        :param scopes: what the token may call.
        :param budget: EUR the token may spend; None for no amount limit.
        :param requests: paid requests the token may make; None for no limit.
        :param ttl: seconds the token lives.
        """
        limits: dict[str, Any] = {}
        if budget is not None:
            limits["walletAmount"] = float(budget)
        if requests is not None:
            limits["walletRequests"] = int(requests)
        minted = await account.amint(scopes, ttl, limits)
        secret = minted.token.get_secret_value()
        mask_secret(secret)
        self.log.info(
            "Per-task token minted: limits %s, expires %s", minted.limits or limits, minted.expire_at
        )
        try:
            yield secret
        finally:
            try:
                await account.arevoke(secret)
                self.log.info("Per-task token revoked")
            except SmsWwError as exc:
                self.log.warning(
                    "Could not revoke the per-task token (%s); it expires at %s",
                    exc.message,
                    minted.expire_at,
                )
