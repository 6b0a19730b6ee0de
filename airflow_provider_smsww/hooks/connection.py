"""How an Airflow connection of type ``smsww`` becomes the clients' settings (docs/hook.md lists the
fields). Used by :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook` only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_smsww.compat import amask_secret, mask_secret
from airflow_provider_smsww.exceptions import SmsWwAuthError

if TYPE_CHECKING:
    from airflow_provider_smsww._http.auth import OAuthAccount


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _with_scheme(host: str) -> str:
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


async def aextra_dejson(conn: Any) -> dict[str, Any]:
    """The connection's extras, read the async way (in the triggerer a sync ``mask_secret`` call can
    deadlock against the supervisor comms). ``Connection.aextra_dejson`` is missing in Airflow 3.3.0:
    there, parse and mask the same way it does."""
    if hasattr(conn, "aextra_dejson"):
        extra: dict[str, Any] = await conn.aextra_dejson()
        return extra
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        extra = {}
    await amask_secret(extra)
    return extra if isinstance(extra, dict) else {}


def _base_url(host: str, port: int | None) -> str:
    """``host`` with a scheme, and with the connection's Port when the host names none (Airflow 3.3's
    form shows Port for its Test button; a port written in the host wins)."""
    url = _with_scheme(host)
    parts = urlsplit(url)
    if port and parts.port is None and parts.hostname:
        url = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return url


def client_settings(
    conn_id: str, conn: Any, extra: dict[str, Any], scoped_token: str | None = None
) -> tuple[dict[str, Any], OAuthAccount | None]:
    """The keyword arguments of the sync and async clients, and the OAuth account (email + API key:
    tokens, credit, per-task caps) when the connection has one.

    :param conn_id: the connection's id, for error messages and the shared rate limiter.
    :param conn: the Airflow connection.
    :param extra: its extras, already parsed (the sync or the async way).
    :param scoped_token: a per-task token to use instead of the connection's credentials.
    """
    from airflow_provider_smsww._http import auth
    from airflow_provider_smsww._http.client import DEFAULT_TIMEOUT, PRODUCTION_URL, SANDBOX_URL
    from airflow_provider_smsww._http.ratelimit import rate_from_extra, shared_rate_limiter
    from airflow_provider_smsww._http.retry import Retrying, RetryPolicy

    sandbox = _as_bool(extra.get("sandbox", False))
    base_url = _base_url(conn.host, conn.port) if conn.host else (SANDBOX_URL if sandbox else PRODUCTION_URL)
    timeout = float(extra["timeout"]) if extra.get("timeout") else DEFAULT_TIMEOUT
    defaults = RetryPolicy()
    retry = RetryPolicy(
        max_retries=int(extra.get("max_retries", defaults.max_retries)),
        backoff_base=float(extra.get("backoff_base", defaults.backoff_base)),
        backoff_max=float(extra.get("backoff_max", defaults.backoff_max)),
    )
    account = None  # the OAuth account, for tokens, credit and per-task caps: email + API key
    if conn.login and extra.get("api_key"):
        oauth_url = extra.get("oauth_host") or (
            auth.OAUTH_SANDBOX_URL if sandbox else auth.OAUTH_PRODUCTION_URL
        )
        # the connection's retry policy; OAuth's own limiter (another host: not paced by the SMS rate)
        account = auth.OAuthAccount(
            _with_scheme(oauth_url), conn.login, extra["api_key"], timeout, Retrying(retry)
        )
    token = scoped_token or conn.password or None
    minter = None
    if not token:
        if account is None:
            raise SmsWwAuthError(
                f"Connection {conn_id!r} has no credentials: set the password to a token, "
                "or the login to the account email and the 'api_key' extra to mint tokens."
            )
        scopes = extra.get("scopes") or auth.default_scopes(base_url)
        if isinstance(scopes, str):  # URI-form connections carry extras as strings
            scopes = [s for s in scopes.replace(",", " ").split() if s]
        scopes = list(scopes)
        minter = auth.shared_minter(account.oauth_url, account.email, account.api_key, scopes, mask_secret)
    rate_limiter = shared_rate_limiter(conn_id, base_url, rate_from_extra(extra, conn_id))
    settings = {"base_url": base_url, "token": token, "minter": minter, "timeout": timeout}
    return {**settings, "retry": retry, "rate_limiter": rate_limiter}, account
