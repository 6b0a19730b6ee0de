"""The sandbox's HTTP face: a FastAPI app with the gateway's paths, envelope, auth and error shape.

:func:`create_app` assembles it: the fault layer (:mod:`.middleware`), the error handlers, then the
routes, one method per endpoint (:class:`GatewayRoutes`, :class:`OAuthRoutes`). Routes are thin: each
one authorises, hands the JSON to :class:`~.state.Sandbox` and wraps the answer in ``{"data": ...}``.
Refusals become ``{"code": int, "message": str}`` with the spec's codes. The request body is read as
raw JSON (not a pydantic model) so that every body problem is answered the same way: 422 with code
1000 (a sandbox assumption: the spec gives no code for it).

OAuth v2 is served by the same app (in production it is another host), with HTTP Basic (the
configured email and API key): ``POST /tokens`` (with ``limits``), ``GET``/``DELETE /tokens/{token}``,
``GET /wallet`` and ``GET /wallet/transactions``. Token answers are the spec's ``TokenDetail`` (wrapped
in ``{"data": ...}`` when ``oauth_envelope`` is set), wallet answers always ``{"data": ...}`` as the
spec shows; errors are in the older ``{"success": false, "message", "error", "data": null}`` shape the
OAuth spec shows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_smsww.exceptions import CODE_INVALID_BODY, CODE_OAUTH_BAD_LIMITS
from airflow_provider_smsww.sandbox.callbacks import CallbackRunner
from airflow_provider_smsww.sandbox.config import SandboxConfig, SandboxError
from airflow_provider_smsww.sandbox.faults import FaultConfig, FaultInjector
from airflow_provider_smsww.sandbox.middleware import FaultMiddleware
from airflow_provider_smsww.sandbox.state import Sandbox
from airflow_provider_smsww.sandbox.tokens import LIMIT_NAMES, MintedToken


def create_app(
    sandbox: Sandbox | None = None,
    *,
    faults: FaultConfig | FaultInjector | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    **config: Any,
) -> FastAPI:
    """A new app around ``sandbox`` (or a new one from ``config``, see :class:`SandboxConfig`).

    ``app.state`` holds ``sandbox``, ``faults`` (the :class:`FaultInjector`) and ``runner`` (the
    :class:`CallbackRunner`), so servers and tests reach what the app serves.

    :param sandbox: the gateway state to serve; a new one from ``config`` when not given.
    :param faults: the faults to inject (a ready injector, or the configuration of a new one).
    :param callback_transport: where callbacks go instead of the network (e.g. an in-process receiver).
    :param config: :class:`SandboxConfig` fields, used only when ``sandbox`` is not given.
    """
    sandbox = sandbox or Sandbox(SandboxConfig(**config))
    injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults or FaultConfig())
    runner = CallbackRunner(sandbox, callback_transport)
    app = FastAPI(
        title="SMS Worldwide sandbox",
        description="Local emulator of Openapi's Gateway SMS v1.2.7 (no real SMS, no cost).",
        lifespan=_lifespan(runner),
        docs_url=None,
        redoc_url=None,
    )
    app.state.sandbox = sandbox
    app.state.faults = injector
    app.state.runner = runner
    app.add_middleware(FaultMiddleware, sandbox=sandbox, injector=injector, runner=runner)
    _answer_errors(app)
    GatewayRoutes(sandbox).add_to(app)
    OAuthRoutes(sandbox).add_to(app)
    return app


def _lifespan(runner: CallbackRunner) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: callbacks are delivered while it serves, and the runner is closed with it.

    :param runner: the callback runner the app owns.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.ensure_started()
        try:
            yield
        finally:
            await runner.aclose()

    return lifespan


def _answer_errors(app: FastAPI) -> None:
    """Every refusal in its API's shape, whoever raised it: the SMS API's ``{"code", "message"}``
    (FastAPI's own 404, 405 and body errors included), the OAuth service's ``{"success": false, ...}``.

    :param app: the app whose exception handlers are set.
    """
    app.exception_handler(SandboxError)(_sandbox_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(OAuthError)(_oauth_refusal)


async def _sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, exc.status, headers=exc.headers)


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
    return JSONResponse({"code": CODE_INVALID_BODY, "message": f"Invalid request: {where}"}, 422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    # exc.headers carries the Allow header of a 405: the spec (RFC 9110) requires it.
    return JSONResponse(
        {"code": exc.status_code, "message": str(exc.detail)}, exc.status_code, headers=exc.headers
    )


async def _oauth_refusal(_: Request, exc: OAuthError) -> JSONResponse:
    return _oauth_error(exc.status, exc.error, exc.message)


class GatewayRoutes:
    """The SMS API's endpoints: Bearer auth, answers wrapped in ``{"data": ...}``, refusals raised as
    :class:`SandboxError` by the sandbox and answered by the app's handlers.

    :param sandbox: the gateway state every endpoint reads and changes.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def add_to(self, app: FastAPI) -> None:
        """Route the gateway's paths to this object's endpoints.

        :param app: the app to route.
        """
        for region in ("WW", "IT", "ES"):
            app.add_api_route(
                f"/{region}-messages", self.send_endpoint(region), methods=["POST"], status_code=201
            )
        app.add_api_route("/otp", self.send_otp, methods=["POST"], status_code=201)
        app.add_api_route("/messages", self.list_messages, methods=["GET"])
        app.add_api_route("/messages/{message_id}", self.get_message, methods=["GET"])

    def send_endpoint(self, region: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        """``POST /{region}-messages``: one endpoint per plan, each named after it.

        :param region: ``WW``, ``IT`` or ``ES``.
        """

        async def send(request: Request) -> JSONResponse:
            token = self.authorize(request)
            body = await _json_body(request)
            return JSONResponse({"data": self.sandbox.send(region, body, token)}, 201)

        send.__name__ = f"send_{region.lower()}"
        return send

    async def send_otp(self, request: Request) -> JSONResponse:
        token = self.authorize(request)
        body = await _json_body(request)
        return JSONResponse({"data": self.sandbox.send_otp(body, token)}, 201)

    async def list_messages(self, request: Request) -> JSONResponse:
        self.authorize(request)
        return JSONResponse({"data": self.sandbox.list_messages(*_page(request))})

    async def get_message(self, request: Request, message_id: str) -> JSONResponse:
        self.authorize(request)
        return JSONResponse({"data": self.sandbox.get(message_id)})

    def authorize(self, request: Request) -> MintedToken | None:
        """The minted token the request's Bearer token names (``None`` for the static token); 401 or 403
        raised when the token may not make this call.

        :param request: the request to authorise.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        return self.sandbox.authorize(bearer, request.method, request.url.path)


class OAuthError(Exception):
    """A refusal of the OAuth service, answered in the older ``{"success": false, ...}`` shape its spec
    shows.

    :param status: the HTTP status.
    :param error: the ``error`` code of the answer.
    :param message: the ``message`` of the answer.
    """

    def __init__(self, status: int, error: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class OAuthRoutes:
    """The OAuth v2 service's endpoints (another host in production): HTTP Basic with the configured
    email and API key, refusals raised as :class:`OAuthError`.

    :param sandbox: the state holding the tokens and the account's money.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def add_to(self, app: FastAPI) -> None:
        """Route the OAuth service's paths to this object's endpoints.

        :param app: the app to route.
        """
        app.add_api_route("/tokens", self.mint_token, methods=["POST"])
        app.add_api_route("/tokens/{token}", self.token_detail, methods=["GET"])
        app.add_api_route("/tokens/{token}", self.revoke_token, methods=["DELETE"])
        app.add_api_route("/wallet", self.wallet, methods=["GET"])
        app.add_api_route("/wallet/transactions", self.wallet_transactions, methods=["GET"])

    async def mint_token(self, request: Request) -> JSONResponse:
        self.require_basic(request)
        scopes, ttl, name, limits = _token_request(await request.body())
        return self.token_answer(self.sandbox.mint_token(scopes, ttl, name, limits))

    async def token_detail(self, request: Request, token: str) -> JSONResponse:
        self.require_basic(request)
        detail = self.sandbox.token_detail(token)
        if not detail:
            raise OAuthError(404, 120, "Not Found")
        return self.token_answer(detail)

    async def revoke_token(self, request: Request, token: str) -> JSONResponse:
        self.require_basic(request)
        if not self.sandbox.revoke_token(token):
            raise OAuthError(404, 180, "Not Found")
        return JSONResponse({"message": "Deleted", "data": None})

    async def wallet(self, request: Request) -> JSONResponse:
        self.require_basic(request)
        return JSONResponse({"data": self.sandbox.wallet()})

    async def wallet_transactions(self, request: Request) -> JSONResponse:
        self.require_basic(request)
        try:
            skip, limit = _page(request)
        except SandboxError as exc:
            raise OAuthError(exc.status, exc.code, exc.message) from None
        if skip < 0 or not 0 <= limit <= 100:
            raise OAuthError(422, CODE_INVALID_BODY, "skip must not be negative, limit from 0 to 100.")
        return JSONResponse({"data": self.sandbox.wallet_transactions(skip, limit)})

    def require_basic(self, request: Request) -> None:
        """401 unless the request carries the configured email and API key.

        :param request: the request to check.
        """
        if not _basic_ok(request, self.sandbox.config.email, self.sandbox.config.api_key):
            raise OAuthError(401, 401, "Unauthorized: wrong email or API key.")

    def token_answer(self, detail: dict[str, Any]) -> JSONResponse:
        """The spec's ``TokenDetail``, wrapped in ``{"data": ...}`` when ``oauth_envelope`` is set.

        :param detail: the token's ``TokenDetail``.
        """
        envelope = self.sandbox.config.oauth_envelope
        return JSONResponse({"data": detail, "success": True} if envelope else detail)


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, else 422 1000 (the same answer for every body problem).

    :param request: the request to read.
    """
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise SandboxError(422, CODE_INVALID_BODY, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise SandboxError(422, CODE_INVALID_BODY, "The body must be a JSON object.")
    return body


def _token_request(raw: bytes) -> tuple[list[str], int | None, str | None, dict[str, float]]:
    """The scopes, ttl, name and limits of a ``POST /tokens`` body, else the OAuth service's 422.

    An ill-typed ``ttl`` or ``name`` is not refused: the default applies.

    :param raw: the request's body.
    """
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(scopes, list) or not scopes:
        raise OAuthError(422, 70, "missing scopes array")
    if not all(isinstance(s, str) and ":" in s and "/" in s for s in scopes):
        raise OAuthError(422, 80, "invalid scopes format")
    limits = _limits(body.get("limits", {}))
    if limits is None:
        raise OAuthError(422, CODE_OAUTH_BAD_LIMITS, "invalid limits format")
    ttl, name = body.get("ttl"), body.get("name")
    return scopes, ttl if isinstance(ttl, int) else None, name if isinstance(name, str) else None, limits


def _limits(raw: Any) -> dict[str, float] | None:
    """The enforced ``TokenLimits`` of a ``POST /tokens`` body, ``None`` when ill-formed: an object whose
    ``walletAmount`` is a number >= 0 and request counts are integers >= 0 (other fields are ignored)."""
    if not isinstance(raw, dict):
        return None
    limits: dict[str, float] = {}
    for name in LIMIT_NAMES:
        if name not in raw:
            continue
        value = raw[name]
        number = isinstance(value, int) or (name == "walletAmount" and isinstance(value, float))
        if isinstance(value, bool) or not number or value < 0:
            return None
        limits[name] = value
    return limits


def _page(request: Request) -> tuple[int, int]:
    """``skip`` and ``limit`` from the query: each at most once and a plain integer, else 422 1000.

    Read by hand rather than by FastAPI, which would silently take the last of repeated values.
    """
    values = []
    for name, default in (("skip", 0), ("limit", 100)):
        given = request.query_params.getlist(name)
        if len(given) > 1 or (given and not re.fullmatch(r"-?[0-9]+", given[0])):
            raise SandboxError(422, CODE_INVALID_BODY, f"{name} must be one integer.")
        values.append(int(given[0]) if given else default)
    return values[0], values[1]


def _basic_ok(request: Request, email: str, api_key: str) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(user, email) & secrets.compare_digest(password, api_key)


def _oauth_error(status: int, error: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "message": message, "error": error, "data": None}, status)
