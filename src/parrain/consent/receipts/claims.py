"""What a receipt says: the Kantara CR v1.1 constants, input validators, the typed receipt
(:class:`Receipt` and its parts), its canonical JSON and :func:`build_receipt`. Pure."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from parrain.errors import InvalidInput
from parrain.kit.ids import derived_id
from parrain.kit.regions import validate_language, validate_market

#: The Kantara specification version every receipt declares in ``version``.
KANTARA_VERSION = "KI-CR-v1.1.0"
#: The key of parrain's extension object, and the version of what it holds.
EXTENSION = "parrain"
FORMAT_VERSION = 1
#: Every optional consent parrain asks for is an explicit, separate yes.
CONSENT_TYPE = "EXPLICIT"

_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
_TEXT_LIMIT = 300
_URL_LIMIT = 500
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_TAXONOMY_KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,39}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_URL = re.compile(r"https?://[^\s]+")
_RECEIPT_ID_NAMESPACE = "consent-receipt"

_T = TypeVar("_T")


class ConsentAction(enum.StrEnum):
    """What the member did: gave an optional consent, or took it back."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


def _require_text(value: object, name: str, *, limit: int = _TEXT_LIMIT) -> str:
    """``value`` if it is trimmed, non-empty, printable text of at most ``limit`` characters."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidInput(f"{name} must be non-empty text without surrounding spaces")
    if len(value) > limit:
        raise InvalidInput(f"{name} must be at most {limit} characters")
    if _UNSAFE_TEXT.search(value):
        raise InvalidInput(f"{name} must not contain control characters or lone surrogates")
    return value


def _require_url(value: object, name: str) -> str:
    text = _require_text(value, name, limit=_URL_LIMIT)
    if not _URL.fullmatch(text):
        raise InvalidInput(f"{name} must be an http or https address without spaces")
    return text


def _require_uuid(value: object, name: str) -> UUID:
    # A type check, not a format check: this is what keeps emails and names out of a receipt.
    if not isinstance(value, UUID):
        raise InvalidInput(f"{name} must be a UUID (a pseudonymous id), not {type(value).__name__}")
    return value


def _require_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false")
    return value


def _require_utc_second(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime")
    if value.utcoffset() or value.microsecond:
        raise InvalidInput(f"{name} must be in UTC, to the second")
    return value


def _require_country(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be an ISO 3166 country code")
    try:
        return validate_market(value)
    except ValueError as error:
        raise InvalidInput(f"{name}: {error}") from None


def _normalised(
    values: object, name: str, *, check: Callable[[object, str], str], limit: int
) -> tuple[str, ...]:
    """``values`` each passed through ``check`` (which may normalise), without repeats, sorted:
    the order a caller lists channels or categories in must not change the receipt's bytes."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"{name} must be a list")
    result = tuple(sorted({check(value, name) for value in values}))
    if not result:
        raise InvalidInput(f"{name} must not be empty")
    if len(result) > limit:
        raise InvalidInput(f"{name} must hold at most {limit} entries")
    return result


def _require_taxonomy_key(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > 200 or not _TAXONOMY_KEY.fullmatch(value):
        raise InvalidInput(f"{name} must hold fideslang keys such as user.content.self_image")
    return value


def _require_channel(value: object, name: str) -> str:
    if not isinstance(value, str) or not _CHANNEL.fullmatch(value):
        raise InvalidInput(f"{name} must hold channel names such as app, web or email")
    return value


def _set(instance: object, name: str, value: object) -> None:
    """Store a normalised value on a frozen dataclass while it is being built."""
    object.__setattr__(instance, name, value)


@dataclass(frozen=True, slots=True)
class ControllerAddress:
    """A controller's postal address, as Kantara's ``address`` object (schema.org names)."""

    street: str
    locality: str
    postal_code: str
    country: str
    region: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.street, "address street")
        _require_text(self.locality, "address locality")
        _require_text(self.postal_code, "address postal code", limit=20)
        _set(self, "country", _require_country(self.country, "address country"))
        if self.region is not None:
            _require_text(self.region, "address region")

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "streetAddress": self.street,
            "addressLocality": self.locality,
            "postalCode": self.postal_code,
            "addressCountry": self.country,
        }
        if self.region is not None:
            claims["addressRegion"] = self.region
        return claims


@dataclass(frozen=True, slots=True)
class Controller:
    """A company responsible for the use (a Kantara ``piiControllers`` entry): its legal
    name and how to reach its privacy contact. These are the company's details, not the
    member's.

    Kantara asks for the contact, address, email and phone; a data-use declaration names
    controllers by legal name only, so each of them may be left out (``None``) and is then
    absent from the claims rather than invented. A present value is checked as before.
    """

    name: str
    contact: str | None = None
    address: ControllerAddress | None = None
    email: str | None = None
    phone: str | None = None
    url: str | None = None
    on_behalf: bool = False

    def __post_init__(self) -> None:
        _require_text(self.name, "controller name")
        if self.contact is not None:
            _require_text(self.contact, "controller contact")
        if self.address is not None and not isinstance(self.address, ControllerAddress):
            raise InvalidInput("controller address must be a ControllerAddress")
        if self.email is not None:
            email = _require_text(self.email, "controller email")
            if "@" not in email or " " in email:
                raise InvalidInput("controller email must be an email address")
        if self.phone is not None:
            _require_text(self.phone, "controller phone", limit=40)
        if self.url is not None:
            _require_url(self.url, "controller url")
        _require_bool(self.on_behalf, "controller on_behalf")

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"piiController": self.name, "onBehalf": self.on_behalf}
        if self.contact is not None:
            claims["contact"] = self.contact
        if self.address is not None:
            claims["address"] = self.address.claims()
        if self.email is not None:
            claims["email"] = self.email
        if self.phone is not None:
            claims["phone"] = self.phone
        if self.url is not None:
            claims["piiControllerUrl"] = self.url
        return claims


@dataclass(frozen=True, slots=True)
class ReceiptPurpose:
    """One use consented to: why in the member's words, the fideslang data use, and the
    fideslang data categories it covers (kept sorted and without repeats)."""

    purpose: str
    data_use: str
    data_categories: tuple[str, ...]
    primary_purpose: bool = False
    third_party_name: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.purpose, "purpose")
        _require_taxonomy_key(self.data_use, "purpose data use")
        categories = _normalised(
            self.data_categories, "purpose data categories", check=_require_taxonomy_key, limit=50
        )
        _set(self, "data_categories", categories)
        _require_bool(self.primary_purpose, "primary purpose")
        if self.third_party_name is not None:
            _require_text(self.third_party_name, "third party name")

    def claims(self, *, termination: str) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "purpose": self.purpose,
            "purposeCategory": [self.data_use],
            "consentType": CONSENT_TYPE,
            "piiCategory": list(self.data_categories),
            "primaryPurpose": self.primary_purpose,
            "termination": termination,
            "thirdPartyDisclosure": self.third_party_name is not None,
        }
        if self.third_party_name is not None:
            claims["thirdPartyName"] = self.third_party_name
        return claims


def _numeric_date(moment: datetime) -> int:
    """Seconds since 1970-01-01T00:00:00Z, as Kantara's ``consentTimestamp`` is written."""
    return int(moment.timestamp())


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The claims of one consent receipt, before or after signing.

    Everything in it is either the caller's input or derived from it (the receipt id from
    the event id, the termination text from the action and expiry), so the same inputs
    always give the same receipt and the same bytes. Build one with :func:`build_receipt`.
    """

    event_id: UUID
    action: ConsentAction
    occurred_at: datetime
    member_id: UUID
    controllers: tuple[Controller, ...]
    jurisdiction: str
    language: str
    collection_method: str
    policy_url: str
    service: str
    purposes: tuple[ReceiptPurpose, ...]
    campaign_id: UUID
    notice_sha256: str
    notice_version: int
    channels: tuple[str, ...]
    territories: tuple[str, ...]
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_uuid(self.event_id, "event_id")
        _require_uuid(self.member_id, "member_id")
        _require_uuid(self.campaign_id, "campaign_id")
        if not isinstance(self.action, ConsentAction):
            raise InvalidInput("action must be 'granted' or 'withdrawn'")
        _require_utc_second(self.occurred_at, "occurred_at")
        if not 0 <= _numeric_date(self.occurred_at) <= _LATEST_TIMESTAMP:
            raise InvalidInput("occurred_at must fall between 1970 and 9999")
        self._check_expiry()
        if not self.controllers or not all(isinstance(c, Controller) for c in self.controllers):
            raise InvalidInput("controllers must list at least one Controller")
        if len(self.controllers) > 20:
            raise InvalidInput("controllers must hold at most 20 entries")
        _set(self, "jurisdiction", _require_country(self.jurisdiction, "jurisdiction"))
        if not isinstance(self.language, str):
            raise InvalidInput("language must be an ISO 639-1 code such as en or fr")
        try:
            _set(self, "language", validate_language(self.language))
        except ValueError as error:
            raise InvalidInput(f"language: {error}") from None
        _require_text(self.collection_method, "collection_method")
        _require_url(self.policy_url, "policy_url")
        _require_text(self.service, "service")
        if not self.purposes or not all(isinstance(p, ReceiptPurpose) for p in self.purposes):
            raise InvalidInput("purposes must list at least one ReceiptPurpose")
        if len(self.purposes) > 50:
            raise InvalidInput("purposes must hold at most 50 entries")
        if not isinstance(self.notice_sha256, str) or not _SHA256_HEX.fullmatch(self.notice_sha256):
            raise InvalidInput("notice_sha256 must be a SHA-256 in 64 lowercase hex characters")
        version = self.notice_version
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
            raise InvalidInput("notice_version must be a whole number from 1")
        _set(
            self,
            "channels",
            _normalised(self.channels, "channels", check=_require_channel, limit=20),
        )
        _set(
            self,
            "territories",
            _normalised(self.territories, "territories", check=_require_country, limit=300),
        )

    def _check_expiry(self) -> None:
        if self.action is ConsentAction.WITHDRAWN:
            if self.expires_at is not None:
                raise InvalidInput(
                    "a withdrawal ends the consent when it happens: expires_at is only for a grant"
                )
            return
        if self.expires_at is None:
            raise InvalidInput("a grant needs expires_at: parrain never records open-ended consent")
        _require_utc_second(self.expires_at, "expires_at")
        if not self.occurred_at < self.expires_at:
            raise InvalidInput("expires_at must come after occurred_at")
        if _numeric_date(self.expires_at) > _LATEST_TIMESTAMP:
            raise InvalidInput("expires_at must fall before the year 10000")

    @property
    def receipt_id(self) -> UUID:
        """``consentReceiptID``: derived from the event id, so issuing twice gives one id."""
        return derived_id(_RECEIPT_ID_NAMESPACE, self.event_id)

    @property
    def termination(self) -> str:
        """Kantara's ``termination`` for every purpose: when this consent ends."""
        if self.expires_at is None:
            return f"Withdrawn by the member at {_iso(self.occurred_at)}."
        return f"Ends at {_iso(self.expires_at)}, or earlier if the member withdraws it."

    def claims(self) -> dict[str, Any]:
        """The Kantara CR v1.1 claims, plus the ``"parrain"`` extension, ready for JSON."""
        termination = self.termination
        return {
            "version": KANTARA_VERSION,
            "jurisdiction": self.jurisdiction,
            "consentTimestamp": _numeric_date(self.occurred_at),
            "collectionMethod": self.collection_method,
            "consentReceiptID": str(self.receipt_id),
            "language": self.language,
            "piiPrincipalId": str(self.member_id),
            "piiControllers": [controller.claims() for controller in self.controllers],
            "policyUrl": self.policy_url,
            "services": [
                {
                    "service": self.service,
                    "purposes": [p.claims(termination=termination) for p in self.purposes],
                }
            ],
            # parrain's policy refuses special categories (ADR 11): no receipt covers one.
            "sensitive": False,
            "spiCat": [],
            EXTENSION: {
                "formatVersion": FORMAT_VERSION,
                "action": self.action.value,
                "eventId": str(self.event_id),
                "campaignId": str(self.campaign_id),
                "noticeSha256": self.notice_sha256,
                "noticeVersion": self.notice_version,
                "channels": list(self.channels),
                "territories": list(self.territories),
                "expiresAt": None if self.expires_at is None else _numeric_date(self.expires_at),
            },
        }

    def canonical_json(self) -> bytes:
        """The exact bytes that are signed (see the :mod:`parrain.consent.receipts` docstring)."""
        return canonical_json(self.claims())


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, no NaN: RFC 8785 for receipt values."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _whole_second_utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidInput(
            f"{name} must be a timezone-aware datetime from the clock: a naive time could be "
            "any time zone's"
        )
    return moment.astimezone(UTC).replace(microsecond=0)


def _listed_input(values: Sequence[_T], name: str) -> tuple[_T, ...]:
    # A bare string is a sequence too: "FR" would become the territories "F" and "R".
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(f"{name} must be a list")
    return tuple(values)


def build_receipt(
    *,
    event_id: UUID,
    action: ConsentAction | str,
    occurred_at: datetime,
    member_id: UUID,
    controllers: Sequence[Controller],
    jurisdiction: str,
    language: str,
    collection_method: str,
    policy_url: str,
    service: str,
    purposes: Sequence[ReceiptPurpose],
    campaign_id: UUID,
    notice_sha256: str,
    notice_version: int,
    channels: Sequence[str],
    territories: Sequence[str],
    expires_at: datetime | None = None,
) -> Receipt:
    """The receipt of one consent event (``event_id``): a grant or a withdrawal.

    ``member_id`` is the member's pseudonymous id; ``occurred_at`` and ``expires_at`` come
    from the caller's clock, timezone-aware (a naive datetime is refused) and are kept to the
    second, as Kantara's timestamps are. A grant needs ``expires_at``; a withdrawal has none.
    ``collection_method`` says where the member said it ("app: photo consent screen, 'Yes,
    use my photo' button"); ``purposes`` carry fideslang keys; ``notice_sha256`` and
    ``notice_version`` name the notice the member was shown. Channels and territories are
    kept sorted and without repeats, so the same inputs always give the same receipt.
    """
    try:
        kind = ConsentAction(action)
    except ValueError:
        raise InvalidInput("action must be 'granted' or 'withdrawn'") from None
    return Receipt(
        event_id=event_id,
        action=kind,
        occurred_at=_whole_second_utc(occurred_at, "occurred_at"),
        member_id=member_id,
        controllers=_listed_input(controllers, "controllers"),
        jurisdiction=jurisdiction,
        language=language,
        collection_method=collection_method,
        policy_url=policy_url,
        service=service,
        purposes=_listed_input(purposes, "purposes"),
        campaign_id=campaign_id,
        notice_sha256=notice_sha256,
        notice_version=notice_version,
        channels=_listed_input(channels, "channels"),
        territories=_listed_input(territories, "territories"),
        expires_at=None if expires_at is None else _whole_second_utc(expires_at, "expires_at"),
    )
