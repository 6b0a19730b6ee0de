"""One-time codes (``POST /otp``) for :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook`, and the
masking of every code the hook reads.

The hook takes :func:`send_otp` and :func:`asend_otp` as its own methods (``hook.send_otp(...)``); they
live here to keep the hook's module small. A code is a secret: the model holds it as a ``SecretStr``
(no repr, log line, summary or dump shows it), and the hook gives it to Airflow's secrets masker as
soon as it reads a message that carries one, sent or read back (``GET /messages``), so that a caller
who logs it by mistake sees ``***``. Airflow masks nothing shorter than ``[logging]
min_length_masked_secret`` (5 by default): a 4-character code relies on the model alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Unpack

from airflow_provider_smsww.compat import amask_secret, mask_secret
from airflow_provider_smsww.models import Message
from airflow_provider_smsww.validation import OtpParams, build_otp_request

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook


def masked(message: Message) -> Message:
    """``message``, its code (if any) masked in Airflow's logs from now on (sync code only)."""
    if (code := message.otp_code()) is not None:
        mask_secret(code)  # no name: a name the masker does not find sensitive would skip the mask
    return message


async def amasked(message: Message) -> Message:
    """Async twin of :func:`masked`, safe in the triggerer's event loop."""
    if (code := message.otp_code()) is not None:
        await amask_secret(code)
    return message


async def amask_all(messages: Iterable[Message]) -> None:
    """:func:`amasked` for each message (those read from a listing page)."""
    for message in messages:
        await amasked(message)


def send_otp(hook: SmsWwHook, recipient: str, **params: Unpack[OtpParams]) -> Message:
    """Send a one-time code (``POST /otp``): the gateway makes it, sends it from "OTP MOBILE" in the
    recipient's language at WW prices, and answers with the message and its code
    (``message.otp_code()``), masked in Airflow's logs from then on. Returning the code (or the
    message) from a task puts it in XCom: return ``message.summary()``.

    Parameters outside the spec are refused before any request, naming each
    (:func:`~airflow_provider_smsww.validation.build_otp_request`, which holds the defaults). A real
    send is never retried when it may have reached the gateway: that raises
    :class:`~airflow_provider_smsww.exceptions.SmsWwSendUncertainError`; a dry run is retried like a read.

    :param recipient: E.164 number (spaces and dashes allowed).
    :param length: characters of the code, 4 to 10 (default 5).
    :param alphanumeric: digits and capital letters instead of digits only (default False).
    :param cache_seconds: 0 to 600 (default 0): within this many seconds the same number gets the
        same code again.
    :param dry_run: validate and price only (free; nothing is sent, the code in the answer is not cached).
    :param callback: the API's callback object, checked as for sends.
    """
    request = build_otp_request(recipient, **params)  # before the client: no connection read for bad input
    return masked(hook.client.send_otp(request))


async def asend_otp(hook: SmsWwHook, recipient: str, **params: Unpack[OtpParams]) -> Message:
    """Async twin of :func:`send_otp` (``await hook.asend_otp(...)``), with the same parameters.

    :param recipient: E.164 number (spaces and dashes allowed).
    :param params: ``length``, ``alphanumeric``, ``cache_seconds``, ``dry_run``, ``callback``, as for
        :func:`send_otp`.
    """
    request = build_otp_request(recipient, **params)
    return await amasked(await (await hook.get_async_conn()).send_otp(request))
