"""``POST /otp``: its body, and the codes it generates, each kept for the request's ``cacheSeconds`` (a
repeated request within it gets the same code; a dry run never caches one)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_smsww.exceptions import CODE_INVALID_BODY, CODE_OTP_LENGTH
from airflow_provider_smsww.sandbox.bodies import int_field, read_options, read_recipient
from airflow_provider_smsww.sandbox.config import SPEC_TEXTS, SandboxError
from airflow_provider_smsww.validation import Recipient, check_otp_cache_seconds, check_otp_length


@dataclass(frozen=True)
class OtpBody:
    """An OTP request's body once checked."""

    recipient: Recipient
    options: dict[str, bool]
    length: int
    alphanumeric: bool
    cache_seconds: int


def read_otp(body: Mapping[str, Any]) -> OtpBody:
    """``POST /otp``'s body: options, ``length`` 4-10 (422 1020), ``cacheSeconds`` 0-600,
    ``alphanumeric``, a worldwide recipient. The range rules are the provider's
    (:mod:`airflow_provider_smsww.validation`), so the hook refuses locally what the sandbox refuses."""
    options = read_options(body.get("options", {}))
    length = int_field(body, "length", 5)
    if check_otp_length(length):
        raise SandboxError(422, CODE_OTP_LENGTH, SPEC_TEXTS[CODE_OTP_LENGTH])
    cache_seconds = int_field(body, "cacheSeconds", 0)
    if problem := check_otp_cache_seconds(cache_seconds):
        raise SandboxError(422, CODE_INVALID_BODY, f"cacheSeconds {problem.message}.")
    alphanumeric = body.get("alphanumeric", False)
    if not isinstance(alphanumeric, bool):
        raise SandboxError(422, CODE_INVALID_BODY, "alphanumeric must be a boolean.")
    return OtpBody(read_recipient(body.get("recipient"), "WW"), options, length, alphanumeric, cache_seconds)


class OtpCodes:
    """The codes generated so far, by recipient, with when each stops being reused."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, datetime]] = {}

    def message(self, otp: OtpBody, now: datetime) -> tuple[str, dict[str, Any]]:
        """The text of the OTP message (in English: the real gateway translates it) and its ``otp``
        and ``otpOptions`` fields."""
        code = self._code(otp, now)
        options = {"length": otp.length, "alphanumeric": otp.alphanumeric, "cacheSeconds": otp.cache_seconds}
        return f"Your verification code is {code}", {"otp": code, "otpOptions": options}

    def _code(self, otp: OtpBody, now: datetime) -> str:
        e164, length = otp.recipient.e164, otp.length
        cached = self._cache.get(e164)
        if cached and cached[1] > now and len(cached[0]) == length:
            return cached[0]
        alphabet = (string.digits + string.ascii_uppercase) if otp.alphanumeric else string.digits
        code = "".join(secrets.choice(alphabet) for _ in range(length))
        if otp.cache_seconds and not otp.options["dryRun"]:
            self._cache[e164] = (code, now + timedelta(seconds=otp.cache_seconds))
        return code
