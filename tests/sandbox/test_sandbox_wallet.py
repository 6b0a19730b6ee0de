"""The OAuth side of the sandbox: wallet, wallet transactions, token limits, stats and revocation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox
from tests.sandbox.helpers import FakeClock

IT = "+393331234567"
US = "+14155550123"


@pytest.fixture
def oauth(sandbox_app: InProcessSandbox) -> Iterator[httpx.Client]:
    """A client authenticated with HTTP Basic (email + API key), as the OAuth paths want."""
    config = sandbox_app.sandbox.config
    with httpx.Client(
        transport=sandbox_app.transport, base_url=sandbox_app.url, auth=(config.email, config.api_key)
    ) as client:
        yield client


def mint(oauth: httpx.Client, **limits: float) -> str:
    response = oauth.post("/tokens", json={"scopes": ["*:test.sms.openapi.com/*"], "limits": limits})
    assert response.status_code == 200, response.text
    assert response.json()["limits"] == limits
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_wallet_and_transactions(
    http: httpx.Client, oauth: httpx.Client, sandbox_app: InProcessSandbox, clock: FakeClock
) -> None:
    created = oauth.get("/wallet").json()["data"]
    assert created["credit"] == 100
    assert created["updatedAt"] == created["createdAt"]

    ww = http.post("/WW-messages", json={"recipient": US, "message": "hi"}).json()["data"]["id"]
    clock.tick(0.2)  # WW is charged on provider acceptance (PENDING)
    it = http.post("/IT-messages", json={"recipient": IT, "message": "x" * 200}).json()["data"]["id"]
    http.post("/WW-messages", json={"recipient": US, "message": "dry", "options": {"dryRun": True}})
    http.post("/WW-messages", json={"recipient": US, "message": "a forbiddenword"})  # 1 EUR penalty

    rows = oauth.get("/wallet/transactions").json()["data"]
    (penalty_id,) = [m.id for m in sandbox_app.sandbox.messages.values() if m.blocklisted]
    assert [(r["id"], r["amount"], r["description"]) for r in rows] == [
        (f"txn_{penalty_id}", -1.0, f"SMS WW-messages to {US}: forbidden content penalty"),
        (f"txn_{it}", pytest.approx(-0.13), f"SMS IT-messages to {IT}"),  # 2 parts x 0.065
        (f"txn_{ww}", -0.01, f"SMS WW-messages to {US}"),
    ]
    assert all(r["createdAt"].endswith("Z") for r in rows)
    wallet = oauth.get("/wallet").json()["data"]
    assert wallet["credit"] == pytest.approx(100 - 1 - 0.13 - 0.01) == sandbox_app.sandbox.credit
    assert wallet["updatedAt"] == rows[0]["createdAt"]
    assert wallet["createdAt"] == created["createdAt"]

    assert [
        r["id"] for r in oauth.get("/wallet/transactions", params={"skip": 1, "limit": 1}).json()["data"]
    ] == [f"txn_{it}"]
    for query in ("limit=101", "skip=-1", "skip=1&skip=2"):
        refused = oauth.get(f"/wallet/transactions?{query}")
        assert (refused.status_code, refused.json()["success"]) == (422, False), query
    for path in ("/wallet", "/wallet/transactions"):
        assert http.get(path).status_code == 401  # Bearer is not enough: Basic auth
        assert http.get(path, auth=(sandbox_app.sandbox.config.email, "wrong")).json()["error"] == 401


def test_total_requests_limit(http: httpx.Client, oauth: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    token = mint(oauth, totalRequests=2)
    for _ in range(2):
        assert http.get("/messages", headers=bearer(token)).status_code == 200
    refused = http.post("/WW-messages", headers=bearer(token), json={"recipient": US, "message": "x"})
    assert refused.status_code == 402
    assert refused.json() == {"code": 2035, "message": "Token limit reached: totalRequests 2 used."}
    assert sandbox_app.sandbox.messages == {}
    assert oauth.get(f"/tokens/{token}").json()["stats"] == {
        "totalRequests": 2,
        "walletRequests": 0,
        "walletAmount": 0,
    }
    assert http.get("/messages").status_code == 200  # the static token has no limits


def test_wallet_requests_limit_counts_real_sends_only(
    http: httpx.Client, oauth: httpx.Client, sandbox_app: InProcessSandbox
) -> None:
    token = mint(oauth, walletRequests=1)
    send = {"recipient": IT, "message": "x"}
    assert http.post("/IT-messages", headers=bearer(token), json=send).status_code == 201
    dry = {**send, "options": {"dryRun": True}}
    assert http.post("/IT-messages", headers=bearer(token), json=dry).status_code == 201  # free
    credit = sandbox_app.sandbox.credit
    refused = http.post("/IT-messages", headers=bearer(token), json=send)
    assert (refused.status_code, refused.json()["code"]) == (402, 2035)
    assert "walletRequests" in refused.json()["message"]
    assert len(sandbox_app.sandbox.messages) == 1
    assert sandbox_app.sandbox.credit == credit
    stats = oauth.get(f"/tokens/{token}").json()["stats"]
    assert stats == {"totalRequests": 3, "walletRequests": 1, "walletAmount": 0.065}


def test_wallet_amount_limit(http: httpx.Client, oauth: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    token = mint(oauth, walletAmount=0.1)
    send = {"recipient": IT, "message": "x"}
    assert http.post("/IT-messages", headers=bearer(token), json=send).status_code == 201
    refused = http.post("/IT-messages", headers=bearer(token), json=send)  # 0.065 + 0.065 > 0.1
    assert (refused.status_code, refused.json()["code"]) == (402, 2035)
    assert refused.json()["message"] == (
        "Token limit reached: walletAmount 0.1 EUR, 0.065 spent, this send costs 0.065."
    )
    # WW is charged later, at PENDING, but the limit counts its price (US: 0.01 a part) at once.
    assert (
        http.post("/WW-messages", headers=bearer(token), json={"recipient": US, "message": "x"}).status_code
        == 201
    )
    assert oauth.get(f"/tokens/{token}").json()["stats"]["walletAmount"] == pytest.approx(0.075)
    assert len(sandbox_app.sandbox.messages) == 2
    assert sandbox_app.sandbox.credit == pytest.approx(100 - 0.065)


def test_limit_refuses_a_penalty_before_blocking(
    http: httpx.Client, oauth: httpx.Client, sandbox_app: InProcessSandbox
) -> None:
    token = mint(oauth, walletAmount=0.5)
    refused = http.post(
        "/WW-messages", headers=bearer(token), json={"recipient": US, "message": "forbiddenword"}
    )
    assert (refused.status_code, refused.json()["code"]) == (402, 2035)  # the 1 EUR penalty passes the limit
    assert sandbox_app.sandbox.blocklisted is False
    assert sandbox_app.sandbox.messages == {}
    assert sandbox_app.sandbox.credit == 100
    assert oauth.get("/wallet/transactions").json()["data"] == []


@pytest.mark.parametrize(
    "limits",
    [[], {"walletAmount": -1}, {"walletRequests": 1.5}, {"totalRequests": True}, {"walletAmount": "5"}],
)
def test_ill_formed_limits_are_refused(
    oauth: httpx.Client, sandbox_app: InProcessSandbox, limits: Any
) -> None:
    response = oauth.post("/tokens", json={"scopes": ["*:*/*"], "limits": limits})
    assert response.status_code == 422
    assert response.json() == {
        "success": False,
        "message": "invalid limits format",
        "error": 85,
        "data": None,
    }
    assert sandbox_app.sandbox.tokens == {}


def test_token_detail_and_revocation(http: httpx.Client, oauth: httpx.Client) -> None:
    token = mint(oauth, walletAmount=5, totalRequests=10)
    assert http.get("/messages", headers=bearer(token)).status_code == 200
    detail = oauth.get(f"/tokens/{token}").json()
    assert detail["token"] == token
    assert detail["limits"] == {"walletAmount": 5, "totalRequests": 10}
    assert detail["stats"]["totalRequests"] == 1
    assert http.get(f"/tokens/{token}").status_code == 401  # Basic auth, not the Bearer token

    deleted = oauth.delete(f"/tokens/{token}")
    assert (deleted.status_code, deleted.json()) == (200, {"message": "Deleted", "data": None})
    after = http.get("/messages", headers=bearer(token))
    assert (after.status_code, after.json()["code"]) == (401, 401)
    assert oauth.get(f"/tokens/{token}").json() == {
        "success": False,
        "message": "Not Found",
        "error": 120,
        "data": None,
    }
    again = oauth.delete(f"/tokens/{token}")
    assert (again.status_code, again.json()["error"]) == (404, 180)
    assert http.delete(f"/tokens/{token}").status_code == 401
