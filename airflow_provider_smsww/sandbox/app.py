"""The sandbox's HTTP face: a FastAPI app with the gateway's paths, envelope, auth and error shape.

Routes are thin: each one authorises, hands the JSON to :class:`~.state.Sandbox` and wraps the answer
in ``{"data": ...}``. Refusals become ``{"code": int, "message": str}`` with the spec's codes. The
request body is read as raw JSON (not a pydantic model) so that every body problem is answered the
same way: 422 with code 1000 (a sandbox assumption: the spec gives no code for it).

OAuth v2 is served by the same app (in production it is another host), with HTTP Basic (the
configured email and API key): ``POST /tokens`` (with ``limits``), ``GET``/``DELETE /tokens/{token}``,
``GET /wallet`` and ``GET /wallet/transactions``. Token answers are the spec's ``TokenDetail`` (wrapped
in ``{"data": ...}`` when ``oauth_envelope`` is set), wallet answers always ``{"data": ...}`` as the
spec shows; errors are in the older ``{"success": false, "message", "error", "data": null}`` shape the
OAuth spec shows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_smsww.exceptions import CODE_INVALID_BODY, CODE_OAUTH_BAD_LIMITS
from airflow_provider_smsww.sandbox.callbacks import CallbackRunner
from airflow_provider_smsww.sandbox.config import SandboxConfig, SandboxError
from airflow_provider_smsww.sandbox.faults import (
    FAULT_HEADER,
    DroppedConnection,
    FaultConfig,
    FaultInjector,
    FaultRecord,
    FaultSyntaxError,
)
from airflow_provider_smsww.sandbox.state import Sandbox
from airflow_provider_smsww.sandbox.tokens import LIMIT_NAMES, MintedToken

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def create_app(
    sandbox: Sandbox | None = None,
    *,
    faults: FaultConfig | FaultInjector | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    **config: Any,
) -> FastAPI:
    """A new app around ``sandbox`` (or a new one from ``config``, see :class:`SandboxConfig`).

    ``app.state`` holds ``sandbox``, ``faults`` (the :class:`FaultInjector`) and ``runner`` (the
    :class:`CallbackRunner`). ``callback_transport`` routes callbacks elsewhere than the network
    (e.g. an in-process receiver app in tests).
    """
    sandbox = sandbox or Sandbox(SandboxConfig(**config))
    injector = faults if isinstance(faults, FaultInjector) else FaultInjector(faults or FaultConfig())
    runner = CallbackRunner(sandbox, callback_transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.ensure_started()
        try:
            yield
        finally:
            await runner.aclose()

    app = FastAPI(
        title="SMS Worldwide sandbox",
        description="Local emulator of Openapi's Gateway SMS v1.2.7 (no real SMS, no cost).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.sandbox = sandbox
    app.state.faults = injector
    app.state.runner = runner
    app.add_middleware(FaultMiddleware, sandbox=sandbox, injector=injector, runner=runner)

    @app.exception_handler(SandboxError)
    async def _sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
        return JSONResponse({"code": CODE_INVALID_BODY, "message": f"Invalid request: {where}"}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # exc.headers carries the Allow header of a 405: the spec (RFC 9110) requires it.
        return JSONResponse(
            {"code": exc.status_code, "message": str(exc.detail)}, exc.status_code, headers=exc.headers
        )

    def authorize(request: Request) -> MintedToken | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return sandbox.authorize(
            token.strip() if scheme.lower() == "bearer" else None, request.method, request.url.path
        )

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise SandboxError(422, CODE_INVALID_BODY, "The body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise SandboxError(422, CODE_INVALID_BODY, "The body must be a JSON object.")
        return body

    def send_route(region: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def send(request: Request) -> JSONResponse:
            token = authorize(request)
            body = await json_body(request)
            data = sandbox.send(region, body, token)
            return JSONResponse({"data": data}, 201)

        send.__name__ = f"send_{region.lower()}"
        return send

    for region in ("WW", "IT", "ES"):
        app.add_api_route(f"/{region}-messages", send_route(region), methods=["POST"], status_code=201)

    @app.post("/otp", status_code=201)
    async def send_otp(request: Request) -> JSONResponse:
        token = authorize(request)
        body = await json_body(request)
        data = sandbox.send_otp(body, token)
        return JSONResponse({"data": data}, 201)

    @app.get("/messages")
    async def list_messages(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse({"data": sandbox.list_messages(*_page(request))})

    @app.get("/messages/{message_id}")
    async def get_message(request: Request, message_id: str) -> JSONResponse:
        authorize(request)
        return JSONResponse({"data": sandbox.get(message_id)})

    @app.post("/tokens")
    async def mint_token(request: Request) -> JSONResponse:
        if not _basic_ok(request, sandbox.config.email, sandbox.config.api_key):
            return _oauth_error(401, 401, "Unauthorized: wrong email or API key.")
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _oauth_error(422, 70, "missing scopes array")
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not scopes:
            return _oauth_error(422, 70, "missing scopes array")
        if not all(isinstance(s, str) and ":" in s and "/" in s for s in scopes):
            return _oauth_error(422, 80, "invalid scopes format")
        limits = _limits(body.get("limits", {}))
        if limits is None:
            return _oauth_error(422, CODE_OAUTH_BAD_LIMITS, "invalid limits format")
        ttl = body.get("ttl")
        name = body.get("name")
        detail = sandbox.mint_token(
            scopes, ttl if isinstance(ttl, int) else None, name if isinstance(name, str) else None, limits
        )
        return token_answer(detail)

    def token_answer(detail: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"data": detail, "success": True} if sandbox.config.oauth_envelope else detail)

    def basic_ok(request: Request) -> bool:
        return _basic_ok(request, sandbox.config.email, sandbox.config.api_key)

    @app.get("/tokens/{token}")
    async def token_detail(request: Request, token: str) -> JSONResponse:
        if not basic_ok(request):
            return _oauth_error(401, 401, "Unauthorized: wrong email or API key.")
        detail = sandbox.token_detail(token)
        return token_answer(detail) if detail else _oauth_error(404, 120, "Not Found")

    @app.delete("/tokens/{token}")
    async def revoke_token(request: Request, token: str) -> JSONResponse:
        if not basic_ok(request):
            return _oauth_error(401, 401, "Unauthorized: wrong email or API key.")
        if not sandbox.revoke_token(token):
            return _oauth_error(404, 180, "Not Found")
        return JSONResponse({"message": "Deleted", "data": None})

    @app.get("/wallet")
    async def wallet(request: Request) -> JSONResponse:
        if not basic_ok(request):
            return _oauth_error(401, 401, "Unauthorized: wrong email or API key.")
        return JSONResponse({"data": sandbox.wallet()})

    @app.get("/wallet/transactions")
    async def wallet_transactions(request: Request) -> JSONResponse:
        if not basic_ok(request):
            return _oauth_error(401, 401, "Unauthorized: wrong email or API key.")
        try:
            skip, limit = _page(request)
        except SandboxError as exc:
            return _oauth_error(exc.status, exc.code, exc.message)
        if skip < 0 or not 0 <= limit <= 100:
            return _oauth_error(422, CODE_INVALID_BODY, "skip must not be negative, limit from 0 to 100.")
        return JSONResponse({"data": sandbox.wallet_transactions(skip, limit)})

    return app


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


class FaultMiddleware:
    """Outermost ASGI layer: records every request, injects faults, starts the callback runner.

    'Before' faults answer without calling the app; 'after' faults let the app process (and store)
    the request, swallow its answer and replace it with a 5xx or a dropped connection.
    """

    def __init__(
        self, app: Any, *, sandbox: Sandbox, injector: FaultInjector, runner: CallbackRunner
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.injector = injector
        self.runner = runner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.runner.ensure_started()
        method, path = scope["method"], scope["path"]
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.decode("latin-1").lower() == FAULT_HEADER),
            None,
        )
        try:
            chosen = self.injector.choose(method, path, header)
        except FaultSyntaxError as exc:
            await _json(send, 400, {"code": 400, "message": f"{FAULT_HEADER}: {exc}"})
            self._seen(method, path, 400)
            return
        fault, source = chosen if chosen else (None, "")
        if fault is None or (fault.action is None and not fault.latency):
            await self._pass(scope, receive, send, method, path)
            return
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.action is None:
            await self._pass(scope, receive, send, method, path)
            self.injector.record(FaultRecord(method, path, fault.label, source))
            return
        message_id = None
        if fault.after:
            status, body = await self._capture(scope, receive)
            message_id = _data_id(body) if status < 300 else None
        self.injector.record(FaultRecord(method, path, fault.label, source, message_id))
        if fault.action == "drop":
            self._seen(method, path, 0)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            raise DroppedConnection(f"sandbox fault {fault.label} on {method} {path}")
        if fault.action == "429":
            retry_after = f"{fault.retry_after or 0:g}"
            await _json(
                send,
                429,
                {"code": 429, "message": "Too many requests."},
                [(b"retry-after", retry_after.encode())],
            )
            self._seen(method, path, 429)
            return
        await _json(send, fault.status, {"code": fault.status, "message": "Sandbox injected server error."})
        self._seen(method, path, fault.status)

    async def _pass(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, recording)
        self._seen(method, path, status)

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        status, chunks = 500, []

        async def swallow(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, swallow)
        return status, b"".join(chunks)

    def _seen(self, method: str, path: str, status: int) -> None:
        """Requests seen, as answered; status 0 marks a dropped connection."""
        self.sandbox.requests.append((method, path, status))


async def _json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _data_id(body: bytes) -> str | None:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data.get("id") if isinstance(data, dict) else None
