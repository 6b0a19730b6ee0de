"""The sandbox's OAuth side: the tokens ``POST /tokens`` mints, their scopes and ``limits`` (the
per-task spending cap the provider relies on), checked on every SMS API call and written through to the
state file."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from airflow_provider_smsww.exceptions import CODE_SCOPE, CODE_TOKEN_LIMIT, CODE_UNAUTHORIZED
from airflow_provider_smsww.sandbox.config import SandboxConfig, SandboxError
from airflow_provider_smsww.sandbox.messages import iso
from airflow_provider_smsww.sandbox.store import StateFile

#: The TokenLimits the sandbox enforces (``subscriptionRequests`` and ``ip`` are not: no subscriptions,
#: loopback only). ``walletAmount`` is EUR, the others are request counts.
LIMIT_NAMES = ("walletAmount", "walletRequests", "totalRequests")


@dataclass
class MintedToken:
    """A token from ``POST /tokens``, with its limits and the usage they are checked against."""

    token: str
    scopes: tuple[str, ...]
    expires: datetime
    name: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    refresh_token: str = ""
    limits: dict[str, float] = field(default_factory=dict)  # a subset of LIMIT_NAMES
    total_requests: int = 0  # every SMS API call made with it (refused ones included, 401/402 excepted)
    wallet_requests: int = 0  # real sends that cost money (forbidden-content penalties included)
    wallet_amount: Decimal = Decimal(0)  # EUR those sends cost

    def detail(self) -> dict[str, Any]:
        """The OAuth spec's ``TokenDetail``, with ``limits`` as given and ``stats`` so far."""
        return {
            "token": self.token,
            "name": self.name,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
            "expireAt": iso(self.expires),
            "scopes": list(self.scopes),
            "refreshToken": self.refresh_token,
            "limits": dict(self.limits),
            "stats": {
                "totalRequests": self.total_requests,
                "walletRequests": self.wallet_requests,
                "walletAmount": float(self.wallet_amount),
            },
        }


class Tokens:
    """The minted tokens of one sandbox, under its lock, each change written to its state file.

    :param config: the sandbox's config (its static token, the default ttl, the clock).
    :param lock: the sandbox's lock.
    :param store: its state file, if any.
    """

    def __init__(self, config: SandboxConfig, lock: threading.RLock, store: StateFile | None) -> None:
        self.config, self._lock, self._store = config, lock, store
        self.by_token: dict[str, MintedToken] = {}

    def save(self, token: MintedToken) -> None:
        if self._store is not None:
            self._store.put("token", token.token, asdict(token))

    def load(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            token = token_from_row(row)
            self.by_token[token.token] = token

    def mint(
        self, scopes: list[str], ttl: int | None, name: str | None, limits: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """A new Bearer token (OAuth v2 ``POST /tokens``); ttl <= 0 or missing means the default.

        ``limits`` (a subset of :data:`LIMIT_NAMES`, already validated) are enforced on the SMS API.
        """
        now = self.config.wall_clock()
        seconds = ttl if ttl and ttl > 0 else self.config.token_ttl_default
        seconds = min(seconds, 365 * 24 * 3600)
        minted = MintedToken(
            token=secrets.token_hex(12),
            scopes=tuple(scopes),
            expires=now + timedelta(seconds=seconds),
            name=name or "",
            created_at=now,
            refresh_token=secrets.token_hex(12),
            limits=dict(limits or {}),
        )
        with self._lock:
            self.by_token[minted.token] = minted
            self.save(minted)
            return minted.detail()

    def detail(self, token: str) -> dict[str, Any] | None:
        """``GET /tokens/{token}``: the TokenDetail with its stats, ``None`` when unknown or revoked."""
        with self._lock:
            minted = self.by_token.get(token)
            return minted.detail() if minted else None

    def revoke(self, token: str) -> bool:
        """``DELETE /tokens/{token}``: later calls with it are 401. False when it was unknown."""
        with self._lock:
            if self.by_token.pop(token, None) is None:
                return False
            if self._store is not None:
                self._store.delete("token", token)
            return True

    def authorize(self, token: str | None, method: str, path: str) -> MintedToken | None:
        """The minted token that may make this call (``None`` for the static token); else raise 401 for
        a missing, unknown, revoked or expired token, 403 when its scopes miss this call, 402 2035 when
        its ``totalRequests`` are used up. Counts the call in the token's ``totalRequests``.

        Scopes are ``METHOD:host/path`` with ``*`` wildcards; the host part is ignored because the
        sandbox answers under whatever name it was reached by.
        """
        if token and secrets.compare_digest(token, self.config.token):
            return None
        with self._lock:
            minted = self.by_token.get(token or "")
            if minted is None or minted.expires <= self.config.wall_clock():
                raise SandboxError(401, CODE_UNAUTHORIZED, "Unauthorized: missing, unknown or expired token.")
            if not any(scope_allows(scope, method, path) for scope in minted.scopes):
                raise SandboxError(403, CODE_SCOPE, f"The token has no scope for {method} {path}.")
            cap = minted.limits.get("totalRequests")
            if cap is not None and minted.total_requests >= cap:
                raise SandboxError(402, CODE_TOKEN_LIMIT, f"Token limit reached: totalRequests {cap:g} used.")
            minted.total_requests += 1
            self.save(minted)
            return minted

    def check_limits(self, token: MintedToken | None, cost: Decimal) -> None:
        """402 2035 when one more paid send of ``cost`` EUR would pass the token's wallet limits."""
        if token is None:
            return
        requests = token.limits.get("walletRequests")
        if requests is not None and token.wallet_requests + 1 > requests:
            raise SandboxError(
                402, CODE_TOKEN_LIMIT, f"Token limit reached: walletRequests {requests:g} paid requests used."
            )
        amount = token.limits.get("walletAmount")
        if amount is not None and token.wallet_amount + cost > Decimal(str(amount)):
            raise SandboxError(
                402,
                CODE_TOKEN_LIMIT,
                f"Token limit reached: walletAmount {amount:g} EUR, {float(token.wallet_amount):g} spent, "
                f"this send costs {float(cost):g}.",
            )

    def spend(self, token: MintedToken | None, cost: Decimal) -> None:
        if token is not None:
            token.wallet_requests += 1
            token.wallet_amount += cost
            self.save(token)


def token_from_row(row: dict[str, Any]) -> MintedToken:
    """A :class:`MintedToken` from its state-file row."""
    fields = dict(row)
    fields["scopes"] = tuple(row["scopes"])
    fields["expires"] = datetime.fromisoformat(row["expires"])
    fields["created_at"] = datetime.fromisoformat(row["created_at"])
    fields["wallet_amount"] = Decimal(row["wallet_amount"])
    return MintedToken(**fields)


def scope_allows(scope: str, method: str, path: str) -> bool:
    scope_method, _, rest = scope.partition(":")
    scope_path = "/" + rest.partition("/")[2] if "/" in rest else "/*"
    return fnmatchcase(method.upper(), scope_method.upper()) and fnmatchcase(path, scope_path)
