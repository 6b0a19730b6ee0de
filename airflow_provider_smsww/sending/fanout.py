"""The one fan-out of real sends, shared by the operator (:mod:`.bulk`) and the notifier: a bounded
number in flight, and the first refusal of the account stops the sends not yet started."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from airflow_provider_smsww.concurrency import bounded
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwError, SmsWwInsufficientCreditError

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient

R = TypeVar("R")

#: Errors after which no further send of the batch can succeed: stop instead of hammering the API.
FATAL_ERRORS = (SmsWwAuthError, SmsWwInsufficientCreditError)


class FanOut:
    """Real sends of one batch. Each caller's worker asks :meth:`stopped` first, then :meth:`send`, and
    handles the other errors its own way (the operator reconciles an unknown outcome, the notifier
    reports it).

    :param hook: the hook (or the capped hook of ``SmsWwHook.scoped``) that sends.
    :param batch: what is sent, to whom.
    :param concurrency: sends in flight at once.
    :param failures: ``Recipient.key`` -> why it was not sent; filled as the sends go.
    """

    def __init__(self, hook: SmsWwHook, batch: Batch, concurrency: int, failures: dict[str, str]) -> None:
        self.hook, self.batch, self.concurrency, self.failures = hook, batch, concurrency, failures
        #: The error that stopped the sends (credentials, credit, spending cap), if one did.
        self.fatal: SmsWwError | None = None

    def stopped(self, recipient: Recipient) -> bool:
        """True, with the recipient reported "not sent", once a fatal error stopped the batch."""
        if self.fatal is None:
            return False
        self.failures[recipient.key] = f"not sent: {self.fatal.message}"
        return True

    async def send(self, recipient: Recipient) -> Message | None:
        """Send one message for real; None when a fatal error refused it (reported in ``failures``)."""
        try:
            return await self.hook.asend_request(
                self.batch.request(recipient, dry_run=False), self.batch.region
            )
        except FATAL_ERRORS as exc:
            self.fatal = self.fatal or exc
            self.failures[recipient.key] = exc.message
            return None

    async def run(
        self, recipients: Iterable[Recipient], worker: Callable[[Recipient], Awaitable[R]]
    ) -> list[R | None]:
        """Run ``worker`` over ``recipients``, at most ``concurrency`` at once."""
        return await bounded(recipients, worker, self.concurrency)
