"""Pydantic shapes of members. Every personal field is a :class:`~parrain.kit.pii.Pii`.

``Pii`` shows only a mask in ``str``/``repr`` and in JSON output, so a model printed, logged
or serialised by accident shows no personal data; and ``hide_input_in_errors`` keeps the
rejected values out of validation error messages too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict

from parrain.kit.crypto import normalise_identifier
from parrain.kit.pii import Pii
from parrain.kit.regions import Market

#: Longest values accepted (characters, after trimming).
MAX_MARKETPLACE_USER_ID = 200
MAX_EMAIL = 254  # RFC 5321 path limit
MAX_USERNAME = 100
MAX_PHOTO_REF = 2048
MAX_PAYPAL_RECEIVER = 254

#: One ``@``, a local part, a dotted domain, no whitespace or control characters: a sanity
#: check, not RFC 5322 (email-validator is not installed; deliverability is not our test).
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(max_length: int) -> AfterValidator:
    """Trim and NFC-compose; refuse empty, over-long or control-character text.

    Messages never quote the value: it is personal data.
    """

    def check(value: Pii) -> Pii:
        text = normalise_identifier(value.reveal())
        if not text:
            raise ValueError("must not be empty")
        if len(text) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if _CONTROL.search(text):
            raise ValueError("must not contain control characters")
        return Pii(text)

    return AfterValidator(check)


def _email(value: Pii) -> Pii:
    if not _EMAIL.fullmatch(value.reveal()):
        raise ValueError("is not an email address")
    return value


#: The validator of personal text fields, for other domains' shapes.
pii_text = _text

MarketplaceUserId = Annotated[Pii, _text(MAX_MARKETPLACE_USER_ID)]
Email = Annotated[Pii, _text(MAX_EMAIL), AfterValidator(_email)]
Username = Annotated[Pii, _text(MAX_USERNAME)]
PhotoRef = Annotated[Pii, _text(MAX_PHOTO_REF)]
PaypalReceiver = Annotated[Pii, _text(MAX_PAYPAL_RECEIVER)]


class MemberCreate(BaseModel):
    """A member as the marketplace's backend describes them on registration."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    market: Market
    marketplace_user_id: MarketplaceUserId
    email: Email
    username: Username
    photo_ref: PhotoRef | None = None
    paypal_receiver: PaypalReceiver | None = None


class PaypalReceiverUpdate(BaseModel):
    """A new PayPal receiver (email, phone or PayPal id), or ``None`` to remove it."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    paypal_receiver: PaypalReceiver | None


class MemberRead(BaseModel):
    """A member with its personal fields decrypted into masked ``Pii`` values."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    market: str
    marketplace_user_id: Pii
    email: Pii
    username: Pii
    photo_ref: Pii | None
    paypal_receiver: Pii | None
    created_at: datetime
    updated_at: datetime
