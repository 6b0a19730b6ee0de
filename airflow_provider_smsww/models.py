"""Typed shapes of the SMS Worldwide API (Gateway SMS v1.2.7) and of Openapi's OAuth v2 tokens.

Field names follow the spec (camelCase on the wire, snake_case in Python). Responses accept fields the
spec does not list, so a server that grows a field does not break a running DAG; requests forbid
unknown fields, so a typo in a DAG fails before any money is spent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

T = TypeVar("T")

Region = Literal["WW", "IT", "ES"]
REGIONS: tuple[Region, ...] = ("WW", "IT", "ES")
#: Messages a ``GET /messages`` page asks for (``limit``), as the spec's example does.
PAGE_SIZE = 100


@overload
def as_utc(when: datetime) -> datetime: ...
@overload
def as_utc(when: None) -> None: ...
def as_utc(when: datetime | None) -> datetime | None:
    """Timestamps the API or OAuth write without an offset are UTC: never compare them naive."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


class MessageState(enum.StrEnum):
    """Lifecycle of a message. NEW and PENDING are in flight; every other state is final."""

    NEW = "NEW"
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    UNDELIVERABLE = "UNDELIVERABLE"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        return self not in (MessageState.NEW, MessageState.PENDING)

    @property
    def is_failure(self) -> bool:
        return self in FAILED_STATES


FAILED_STATES = frozenset({MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.REJECTED})


class _Wire(BaseModel):
    """Base for every model: camelCase aliases, Python names accepted too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class _Request(_Wire):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON body as sent, secrets (callback header values) included."""
        return self.model_dump(mode="json", exclude_none=True, context={"reveal_secrets": True})


class _Response(_Wire):
    model_config = ConfigDict(extra="allow")


def _reveal(info: SerializationInfo) -> bool:
    """Secrets are written out only when the caller asks for it explicitly (the HTTP client does)."""
    return bool(info.context and info.context.get("reveal_secrets"))


class MessageOptions(_Wire):
    dry_run: bool = False
    fail_on_multiple_messages: bool = False


class Callback(_Wire):
    """Where the gateway reports state changes. ``headers`` often carry credentials: they are kept as
    secrets and written out only in the request body itself, never in a repr, a log line or XCom."""

    url: AnyHttpUrl
    method: Literal["JSON", "POST"] = "JSON"
    field: str = "data"
    retry: int = Field(default=0, ge=0, le=5)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("url")
    def _url(self, url: AnyHttpUrl) -> str:
        return str(url)

    @field_serializer("headers")
    def _headers(self, headers: dict[str, SecretStr], info: SerializationInfo) -> dict[str, str]:
        if _reveal(info):
            return {k: v.get_secret_value() for k, v in headers.items()}
        return {k: "***" for k in headers}


class SendRequest(_Request):
    """Body of ``POST /{WW,IT,ES}-messages``: one recipient per request."""

    recipient: str
    message: str
    sender: str | None = None
    options: MessageOptions = Field(default_factory=MessageOptions)
    callback: Callback | None = None

    @classmethod
    def of(
        cls,
        recipient: str,
        message: str,
        *,
        sender: str | None,
        dry_run: bool,
        fail_on_multiple_messages: bool,
        callback: Callback | None,
    ) -> SendRequest:
        """The one way a checked message becomes a request (the hook's single send and a batch's).

        :param recipient: the E.164 number.
        :param message: the text.
        :param sender: the alias; None or empty for the gateway's default.
        :param dry_run: price and validate only.
        :param fail_on_multiple_messages: refuse a text longer than one part.
        :param callback: the checked callback.
        """
        options = MessageOptions(dry_run=dry_run, fail_on_multiple_messages=fail_on_multiple_messages)
        return cls(
            recipient=recipient, message=message, sender=sender or None, options=options, callback=callback
        )


class SendOtpRequest(_Request):
    """Body of ``POST /otp`` (the spec's ``SendOTPRequest``): the gateway makes the code and sends it
    from "OTP MOBILE" at WW prices. Built by :func:`~airflow_provider_smsww.validation.build_otp_request`."""

    recipient: str
    length: int = 5
    alphanumeric: bool = False
    cache_seconds: int = 0
    options: MessageOptions = Field(default_factory=MessageOptions)
    callback: Callback | None = None


class OtpOptions(_Response):
    """How the gateway made a one-time code (``otpOptions`` of an OTP message)."""

    length: int | None = None
    alphanumeric: bool | None = None
    cache_seconds: int | None = None


class Message(_Response):
    """The message resource, as returned by send and read calls."""

    #: Empty when the API leaves it out (possible in dry-run answers; the operator never records a
    #: real send without one).
    id: str = ""
    username: str | None = None
    # left_to_right: a known state becomes the enum (pydantic's default "smart" union would keep the exact
    # str match, and then is_final/is_failure would be False for every state); an unknown one stays a str.
    state: MessageState | str = Field(default=MessageState.NEW, union_mode="left_to_right")
    sender: str | None = None
    recipient: str | None = None
    international_prefix: str | None = None
    country_code: str | None = None
    message: str | None = None
    encoding: Literal["GSM-7", "UCS-2"] | str | None = None
    characters_count: int | None = None
    message_count: int | None = None
    price: Decimal = Decimal(0)
    total_price: Decimal = Decimal(0)
    blocklisted: bool = False
    blocklisted_reason: str | None = None
    options: MessageOptions | None = None
    callback: Callback | None = None
    is_otp: bool = False
    #: The one-time code of a ``POST /otp`` message: a secret, shown by no repr, log line, summary or
    #: dump; read it with :meth:`otp_code`.
    otp: SecretStr | None = None
    otp_options: OtpOptions | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def charged_price(self) -> Decimal | None:
        """What the gateway prices this message at in all (EUR), or None while it has not priced it: a
        worldwide message is priced only once sent (0 until then, which says nothing)."""
        if self.total_price:
            return self.total_price
        return self.price * self.message_count if self.price and self.message_count else None

    @field_validator("price", "total_price", mode="before")
    @classmethod
    def _null_price_is_zero(cls, value: Any) -> Any:
        """The spec defaults prices to 0 (WW prices are set after sending); ``null`` means the same."""
        return 0 if value is None else value

    @field_serializer("otp")
    def _otp(self, otp: SecretStr | None, info: SerializationInfo) -> str | None:
        if otp is None or _reveal(info):
            return None if otp is None else otp.get_secret_value()
        return "***"

    @model_validator(mode="after")
    def _hide_otp_in_text(self) -> Message:
        """An OTP message's text carries its code ("Your verification code is ..."): the code is cut
        out of it, and the whole text is withheld when the answer says ``isOtp`` without the code."""
        code = self.otp_code()
        if self.message and code:
            self.message = self.message.replace(code, "***")
        elif self.message and self.is_otp:
            self.message = "***"
        return self

    def otp_code(self) -> str | None:
        """The one-time code in clear (None for a message that is not an OTP), for the caller that
        must check what the user types. The hook has already masked it in Airflow's logs; returning it
        from a task would still put it in XCom."""
        return None if self.otp is None else self.otp.get_secret_value()

    @property
    def options_say_real_send(self) -> bool:
        """``options.dryRun`` written and false: the gateway itself reports a real send. An answer or a
        listing without the field says nothing either way."""
        options = self.options
        return options is not None and "dry_run" in options.model_fields_set and not options.dry_run

    @property
    def is_final(self) -> bool:
        """Final when the state is a known final state; an unknown state is treated as in flight."""
        return isinstance(self.state, MessageState) and self.state.is_final

    @property
    def is_failure(self) -> bool:
        return self.blocklisted or (isinstance(self.state, MessageState) and self.state.is_failure)

    @property
    def state_name(self) -> str:
        return self.state.value if isinstance(self.state, MessageState) else str(self.state)

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe record for XCom and logs: no message text, no callback headers."""
        return {
            "id": self.id,
            "recipient": self.recipient,
            "state": self.state_name,
            "messageCount": self.message_count,
            "encoding": self.encoding,
            "totalPrice": float(self.total_price),
            "blocklisted": self.blocklisted,
        }


class Envelope(_Response, Generic[T]):
    """``{"data": ...}``, the wrapper around every successful answer."""

    data: T


class ErrorBody(_Response):
    """Error answer in either shape: ``{"code", "message"}`` (the spec) or the older Openapi
    ``{"success": false, "message", "error", "data": null}``."""

    code: int | None = None
    error: int | None = None
    message: str | None = None

    @property
    def api_code(self) -> int | None:
        return self.code if self.code is not None else self.error


class Token(_Response):
    """A Bearer token minted by OAuth v2 ``POST /tokens``."""

    token: SecretStr
    expire_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    #: The spec's ``TokenLimits`` as the gateway echoes them (``walletAmount``, ``walletRequests``...).
    limits: dict[str, Any] | None = None


class Wallet(_Response):
    """The account's wallet, OAuth v2 ``GET /wallet``: ``credit`` in EUR."""

    credit: Decimal
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Estimate:
    """What a dry run says about one message: its parts and, when the API priced it, its price."""

    recipient: str
    parts: int
    encoding: str | None
    price: Decimal | None  # None: the API did not price it in dry run (WW prices are known after sending)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "messageCount": self.parts,
            "encoding": self.encoding,
            "estimatedPrice": None if self.price is None else float(self.price),
        }
