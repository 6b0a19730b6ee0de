"""SmsWwHook: turns an Airflow connection of type ``smsww`` into an SMS Worldwide client.

Connection fields (see the README for examples):

- ``host``: the API base URL. Empty means production (``https://sms.openapi.com``), or the test host
  when the ``sandbox`` extra is true. A host without a scheme gets ``https://``.
- ``password``: a Bearer token. Or leave it empty and give ``login`` (account email) plus the
  ``api_key`` extra: the hook then mints short-lived tokens through Openapi OAuth v2.
- extras: ``api_key``, ``sandbox`` (bool), ``oauth_host`` (token service override, e.g. the embedded
  sandbox), ``scopes`` (list, default ``*:<sms host>/*``), ``timeout`` (seconds), and the retry policy:
  ``max_retries``, ``backoff_base`` and ``backoff_max`` (seconds).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import amask_secret, mask_secret

from airflow_provider_smsww import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_smsww.client import (
    DEFAULT_TIMEOUT,
    OAUTH_PRODUCTION_URL,
    OAUTH_SANDBOX_URL,
    PRODUCTION_URL,
    SANDBOX_URL,
    AsyncSmsWwClient,
    RetryPolicy,
    SmsWwClient,
    TokenMinter,
    default_scopes,
    shared_minter,
)
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwError


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _with_scheme(host: str) -> str:
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


async def _aextra_dejson(conn: Any) -> dict[str, Any]:
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


class SmsWwHook(BaseHook):
    """Interact with Openapi's SMS Worldwide API.

    The hook holds one pooled sync client and one pooled async client, created on first use, so every
    call of a task shares connections. Close them with :meth:`close` (operators do this for you).

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

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Form layout for Airflow versions that read it from the hook (3.3 reads provider info)."""
        from airflow_provider_smsww import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    def _client_kwargs(self, conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
        sandbox = _as_bool(extra.get("sandbox", False))
        base_url = _with_scheme(conn.host) if conn.host else (SANDBOX_URL if sandbox else PRODUCTION_URL)
        token = conn.password or None
        minter: TokenMinter | None = None
        if not token:
            api_key = extra.get("api_key")
            if not (conn.login and api_key):
                raise SmsWwAuthError(
                    f"Connection {self.smsww_conn_id!r} has no credentials: set the password to a token, "
                    "or the login to the account email and the 'api_key' extra to mint tokens."
                )
            oauth_url = extra.get("oauth_host") or (OAUTH_SANDBOX_URL if sandbox else OAUTH_PRODUCTION_URL)
            scopes = extra.get("scopes") or default_scopes(base_url)
            if isinstance(scopes, str):  # URI-form connections carry extras as strings
                scopes = [s for s in scopes.replace(",", " ").split() if s]
            minter = shared_minter(_with_scheme(oauth_url), conn.login, api_key, list(scopes), mask_secret)
        timeout = float(extra["timeout"]) if extra.get("timeout") else DEFAULT_TIMEOUT
        defaults = RetryPolicy()
        retry = RetryPolicy(
            max_retries=int(extra.get("max_retries", defaults.max_retries)),
            backoff_base=float(extra.get("backoff_base", defaults.backoff_base)),
            backoff_max=float(extra.get("backoff_max", defaults.backoff_max)),
        )
        return {"base_url": base_url, "token": token, "minter": minter, "timeout": timeout, "retry": retry}

    @cached_property
    def client(self) -> SmsWwClient:
        """The sync client (pooled), built from the connection on first use."""
        conn = self.get_connection(self.smsww_conn_id)
        return SmsWwClient(**self._client_kwargs(conn, conn.extra_dejson))

    def get_conn(self) -> SmsWwClient:
        return self.client

    @cached_property
    def async_client(self) -> AsyncSmsWwClient:
        """An async client built from the connection fetched synchronously: for sync code (an
        operator's ``execute``) that then runs its own event loop. Use it in one loop and close it with
        :meth:`aclose` in that loop. In a trigger or other async code use :meth:`get_async_conn`."""
        conn = self.get_connection(self.smsww_conn_id)
        client = AsyncSmsWwClient(**self._client_kwargs(conn, conn.extra_dejson))
        self._async_client = client
        return client

    async def get_async_conn(self) -> AsyncSmsWwClient:
        """The async client (pooled), with the connection fetched the async way (safe in the triggerer)."""
        if self._async_client is None:
            conn = await self.aget_connection(self.smsww_conn_id)
            kwargs = self._client_kwargs(conn, await _aextra_dejson(conn))
            if self._async_client is None:  # another caller may have built it while this one awaited
                self._async_client = AsyncSmsWwClient(**kwargs)
        return self._async_client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
        self.__dict__.pop("async_client", None)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's Test button: reads one message, which proves host, credentials and scope."""
        try:
            client = self.client
            next(client.list_messages(page_size=1, max_items=1), None)
        except SmsWwError as exc:
            return False, str(exc)
        finally:
            self.close()
        return True, "Connection OK: the SMS API accepted the credentials."
