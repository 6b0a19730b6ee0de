"""The sandbox account's money: its credit, one wallet transaction per charge (OAuth ``GET /wallet``
and ``/wallet/transactions``) and whether forbidden content got it blocklisted, each change written
through to the state file."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow_provider_smsww.exceptions import CODE_INSUFFICIENT_CREDIT
from airflow_provider_smsww.sandbox.config import SandboxConfig, SandboxError
from airflow_provider_smsww.sandbox.messages import StoredMessage, iso
from airflow_provider_smsww.sandbox.store import StateFile


class CreditAccount:
    """The sandbox account's credit, its charges and whether it is blocklisted: what the OAuth service
    shows as the wallet. The sandbox holds one, under its lock.

    :param config: the configured credit and clock.
    :param store: the state file, if any.
    """

    def __init__(self, config: SandboxConfig, store: StateFile | None) -> None:
        self._config, self._store = config, store
        self.reset()

    def reset(self) -> None:
        """Back to the configured credit: no charge, no transaction, not blocklisted."""
        self.credit = Decimal(str(self._config.credit))
        self.blocklisted = False
        self.charges: list[tuple[str, Decimal, str]] = []  # (message id, amount, why)
        self.transactions: list[dict[str, Any]] = []  # WalletTransaction wire dicts, oldest first
        self.created = self._config.wall_clock()

    def load(self) -> None:
        """The credit, blocklisting and transactions the state file has (a new file gets them written)."""
        assert self._store is not None
        for row in self._store.load("wallet"):
            self.credit = Decimal(row["credit"])
            self.blocklisted = row["blocklisted"]
            self.created = datetime.fromisoformat(row["created"])
        self.save()
        self.transactions = self._store.load("transaction")

    def save(self) -> None:
        if self._store is not None:
            row = {"credit": str(self.credit), "blocklisted": self.blocklisted, "created": iso(self.created)}
            self._store.put("wallet", "wallet", row)

    def require(self, needed: Decimal, parts: int) -> None:
        """402 2030 unless the credit covers ``needed`` EUR (what a send of ``parts`` parts needs)."""
        if self.credit < needed:
            shortfall = f"{needed:.2f} EUR needed for {parts} part(s), {self.credit:.2f} EUR left."
            raise SandboxError(402, CODE_INSUFFICIENT_CREDIT, f"Insufficient credit: {shortfall}")

    def charge(self, message: StoredMessage, amount: Decimal, why: str, when: datetime) -> None:
        """Take ``amount`` off the credit and book it as a wallet transaction dated ``when``."""
        self.credit -= amount
        self.charges.append((message.id, amount, why))
        api = "otp" if message.otp is not None else f"{message.region}-messages"
        penalty = ": forbidden content penalty" if message.blocklisted else ""
        self.transactions.append(
            {
                "id": f"txn_{message.id}",  # one charge per message at most
                "amount": -float(amount),
                "createdAt": iso(when),
                "description": f"SMS {api} to {message.recipient.e164}{penalty}",
            }
        )
        if self._store is not None:
            self._store.put("transaction", self.transactions[-1]["id"], self.transactions[-1])
            self.save()

    def as_wire(self, credit: float) -> dict[str, Any]:
        """The OAuth spec's ``Wallet``: ``credit``, created at the (re)set, updated at the last charge."""
        updated = self.transactions[-1]["createdAt"] if self.transactions else iso(self.created)
        return {"credit": credit, "createdAt": iso(self.created), "updatedAt": updated}
