"""The one fan-out of sends, shared by the operator (:mod:`~airflow_provider_smsww.sending.bulk`), the
notifier and the hook's own ``send_many``: a bounded number in flight, and the first refusal of the
account stops the sends not yet started.

It lives beside the hook, below everything that sends, so that the stop-on-refusal rule exists once. It
knows what it sends only through :class:`Outbox` (a batch of the operator or the notifier, or the
distinct entries of ``send_many``), so the hook layer imports nothing of ``sending/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from airflow_provider_smsww.concurrency import bounded
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwError, SmsWwInsufficientCreditError

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Message, Region, SendRequest

R = TypeVar("R")

#: Errors after which no further send of the batch can succeed: stop instead of hammering the API.
FATAL_ERRORS = (SmsWwAuthError, SmsWwInsufficientCreditError)


class Addressee(Protocol):
    """One send of a fan-out: a recipient of a batch, or a distinct entry of ``send_many``."""

    @property
    def key(self) -> str:
        """Its identity among the sends, the key of ``failures``."""
        ...


A = TypeVar("A", bound=Addressee)
A_contra = TypeVar("A_contra", bound=Addressee, contravariant=True)


class Outbox(Protocol[A_contra]):
    """What a fan-out sends: the request of each addressee, and the region's send path."""

    @property
    def region(self) -> Region: ...

    def request(self, recipient: A_contra, *, dry_run: bool) -> SendRequest:
        """The request that sends to ``recipient``."""
        ...


class FanOut(Generic[A]):
    """The sends of one batch. Each caller's worker asks :meth:`stopped` first, then :meth:`send`, and
    handles the other errors its own way (the operator reconciles an unknown outcome, the notifier
    reports it, ``send_many`` returns it).

    :param hook: the hook (or the capped hook of ``SmsWwHook.scoped``) that sends.
    :param batch: what is sent, to whom.
    :param concurrency: sends in flight at once.
    :param failures: ``Addressee.key`` -> why it was not sent; filled as the sends go.
    :param dry_run: price and validate only (``send_many(dry_run=True)``); real sends otherwise.
    """

    def __init__(
        self,
        hook: SmsWwHook,
        batch: Outbox[A],
        concurrency: int,
        failures: dict[str, str],
        *,
        dry_run: bool = False,
    ) -> None:
        self.hook, self.batch, self.concurrency, self.failures = hook, batch, concurrency, failures
        self.dry_run = dry_run
        #: The error that stopped the sends (credentials, credit, spending cap), if one did.
        self.fatal: SmsWwError | None = None
        #: ``Addressee.key`` -> the refusal of the account that its own send met.
        self.refused: dict[str, SmsWwError] = {}

    def stopped(self, recipient: A) -> bool:
        """True, with the recipient reported "not sent", once a fatal error stopped the batch."""
        if self.fatal is None:
            return False
        self.failures[recipient.key] = f"not sent: {self.fatal.message}"
        return True

    async def send(self, recipient: A) -> Message | None:
        """Send one message; None when a fatal error refused it (reported in ``failures``)."""
        try:
            return await self.hook.asend_request(
                self.batch.request(recipient, dry_run=self.dry_run), self.batch.region
            )
        except FATAL_ERRORS as exc:
            self.fatal = self.fatal or exc
            self.refused[recipient.key] = exc
            self.failures[recipient.key] = exc.message
            return None

    async def run(self, recipients: Iterable[A], worker: Callable[[A], Awaitable[R]]) -> list[R | None]:
        """Run ``worker`` over ``recipients``, at most ``concurrency`` at once."""
        return await bounded(recipients, worker, self.concurrency)
