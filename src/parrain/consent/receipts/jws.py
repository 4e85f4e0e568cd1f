"""The signature: a receipt signed as a compact EdDSA JWS (:func:`sign_receipt`), and its
offline verification (:func:`verify_receipt`, :func:`verify_receipt_file`) with the strict
JWS, base64url and JSON parsing it rests on."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from parrain.consent.receipts.claims import (
    _LATEST_TIMESTAMP,
    EXTENSION,
    FORMAT_VERSION,
    KANTARA_VERSION,
    ConsentAction,
    Controller,
    ControllerAddress,
    Receipt,
    ReceiptPurpose,
    canonical_json,
)
from parrain.consent.receipts.errors import (
    InvalidReceipt,
    ReceiptAlgorithmRefused,
    ReceiptClaimsMismatch,
    ReceiptKeyUnknown,
    ReceiptMalformed,
    ReceiptSignatureInvalid,
    ReceiptUnreadable,
)
from parrain.errors import InvalidInput
from parrain.kit.crypto.signing import SigningKey, encode_base64url, is_development_key

#: The only JWS algorithm signed or accepted: Ed25519 (RFC 8037).
JWS_ALGORITHM = "EdDSA"
#: Explicit JWS type (RFC 8725 §3.11): a receipt cannot pass for anything else the same key
#: signs, nor anything else for a receipt.
JWS_TYPE = "parrain-consent-receipt+jws"
#: Larger input is refused before parsing: a real receipt is a few kilobytes.
MAX_RECEIPT_BYTES = 64 * 1024

_HEADER_PARAMETERS = frozenset({"alg", "kid", "typ"})
_FILE_KEYS = frozenset({"receipt", "jws"})
_SIGNATURE_BYTES = 64
_JSON_WHITESPACE = " \t\n\r"
_BASE64URL_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")

_T = TypeVar("_T")


# Signing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """A receipt and its compact JWS; :meth:`to_file` is what a member downloads."""

    receipt: Receipt
    jws: str
    kid: str

    def to_file(self) -> bytes:
        """``{"receipt": <claims>, "jws": "<compact JWS>"}`` as indented UTF-8 JSON.

        The readable claims are there for people; the JWS alone proves them. Indentation and
        key order of this file are free, since the verifier compares parsed values.
        """
        document = {"receipt": self.receipt.claims(), "jws": self.jws}
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _jws_header(kid: str) -> bytes:
    return canonical_json({"alg": JWS_ALGORITHM, "kid": kid, "typ": JWS_TYPE})


def sign_receipt(receipt: Receipt, signing_key: SigningKey) -> SignedReceipt:
    """Sign ``receipt``'s canonical JSON as a compact JWS (EdDSA over Ed25519, ``kid`` and
    ``typ`` in the protected header). Deterministic: the same receipt and key, the same JWS."""
    kid = signing_key.kid
    signing_input = (
        f"{encode_base64url(_jws_header(kid))}.{encode_base64url(receipt.canonical_json())}"
    )
    signature = signing_key.sign(signing_input.encode("ascii"))
    return SignedReceipt(
        receipt=receipt, jws=f"{signing_input}.{encode_base64url(signature)}", kid=kid
    )


# Verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """A receipt whose signature checked out: the signed claims, as typed values and as JSON.

    ``development`` is true when the key is the public development key, which anyone can
    compute: such a receipt proves nothing, and :func:`summary` says so.
    """

    receipt: Receipt
    claims: Mapping[str, Any]
    kid: str
    development: bool

    @property
    def summary(self) -> str:
        # Imported here: summary.py imports this module, never the reverse at import time.
        from parrain.consent.receipts.summary import summary

        return summary(self)


def _cut(text: str) -> str:
    """Untrusted text cut short, fit for an error message or its details."""
    return text if len(text) <= 60 else text[:57] + "..."


def _shown(value: object) -> str:
    """An untrusted value, quoted and cut short."""
    return _cut(repr(value))


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {_shown(key)} appears twice")
        found[key] = value
    return found


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(raw: bytes | str, *, what: str, error: type[InvalidReceipt]) -> Any:
    """Strict JSON: valid UTF-8, no duplicate keys (a reader would see one value, a parser
    another), no NaN or Infinity."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
    except ValueError as problem:  # json.JSONDecodeError included
        raise error(f"{what} is not valid JSON: {problem}") from None


def _decode_segment(segment: str, part: str) -> bytes:
    """Strict base64url (RFC 7515 §2): the unpadded alphabet only, and the one spelling of its
    bytes, so that no change to the text leaves the decoded bytes (and the signature) intact."""
    if not segment or not _BASE64URL_SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise ReceiptMalformed(f"the JWS {part} is not base64url text")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise ReceiptMalformed(f"the JWS {part} is not base64url text") from None
    if encode_base64url(raw) != segment:
        raise ReceiptMalformed(f"the JWS {part} is not in canonical base64url (its last bits)")
    return raw


def _open_jws(token: str, public_keys: Mapping[str, Ed25519PublicKey]) -> tuple[str, bytes]:
    """Check a compact JWS and return its kid and payload. The header is judged first (so
    ``alg: none`` with an empty signature is refused as such), and nothing of the payload is
    read before the signature has been checked."""
    segments = token.split(".")
    if len(segments) != 3:
        raise ReceiptMalformed(
            f"a compact JWS is three base64url parts joined by '.'; this has {len(segments)}"
        )
    encoded_header, encoded_payload, encoded_signature = segments
    header = _parse_json(
        _decode_segment(encoded_header, "header"), what="the JWS header", error=ReceiptMalformed
    )
    if not isinstance(header, dict):
        raise ReceiptMalformed("the JWS header is not a JSON object")
    algorithm = header.get("alg")
    if algorithm != JWS_ALGORITHM:
        raise ReceiptAlgorithmRefused(
            f"the JWS algorithm {_shown(algorithm)} is refused: a receipt is signed with "
            f"{JWS_ALGORITHM} (Ed25519) only",
            alg=_cut(algorithm) if isinstance(algorithm, str) else None,
        )
    unknown = sorted(set(header) - _HEADER_PARAMETERS)
    if unknown:
        raise ReceiptMalformed(
            f"the JWS header has parameters a receipt never has: {', '.join(map(_shown, unknown))}"
        )
    if header.get("typ") != JWS_TYPE:
        raise ReceiptMalformed(
            f"the JWS type {_shown(header.get('typ'))} is not {JWS_TYPE!r}: this is not a "
            "parrain consent receipt"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ReceiptMalformed("the JWS header has no key id (kid)")
    public_key = public_keys.get(kid)
    if public_key is None:
        known = sorted(public_keys)
        raise ReceiptKeyUnknown(
            f"the receipt names signing key {_shown(kid)}, which is not among the public keys "
            f"given ({', '.join(known) or 'none'})",
            kid=_cut(kid),
            known=known,
        )
    payload = _decode_segment(encoded_payload, "payload")
    signature = _decode_segment(encoded_signature, "signature")
    try:
        if len(signature) != _SIGNATURE_BYTES:
            raise InvalidSignature
        public_key.verify(signature, f"{encoded_header}.{encoded_payload}".encode("ascii"))
    except InvalidSignature:
        raise ReceiptSignatureInvalid(
            f"the signature does not match key {kid}: the receipt was changed after it was signed",
            kid=kid,
        ) from None
    return kid, payload


def _differences(signed: Any, other: Any, path: str = "") -> list[str]:
    """Where two parsed JSON values differ, by path; types count (``1`` is not ``true``)."""
    if isinstance(signed, dict) and isinstance(other, dict):
        found: list[str] = []
        for key in sorted(set(signed) | set(other), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key in signed and key in other:
                found += _differences(signed[key], other[key], where)
            else:
                found.append(where)
        return found
    if isinstance(signed, list) and isinstance(other, list) and len(signed) == len(other):
        found = []
        for index, (left, right) in enumerate(zip(signed, other, strict=True)):
            found += _differences(left, right, f"{path}[{index}]")
        return found
    same = type(signed) is type(other) and signed == other
    return [] if same else [path or "the whole receipt"]


def _listed(paths: list[str]) -> str:
    shown = [_cut(path) for path in paths[:5]]
    return ", ".join(shown) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _field(obj: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T:
    """``obj[key]`` if it is of ``kind`` (an int is never a bool here), else malformed."""
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "text", int: "a whole number", bool: "true or false", list: "a list"}
        expected = names.get(kind, "an object")
        raise ReceiptMalformed(f"the signed claims' {where}{key} must be {expected}")
    return value


def _objects(obj: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = _field(obj, key, list, where)
    if not items or not all(isinstance(item, dict) for item in items):
        raise ReceiptMalformed(f"the signed claims' {where}{key} must be a list of objects")
    return items


def _optional_text(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """A text field that may be absent (a controller's contact details); present, it must be
    text: ``null`` is not how parrain writes an absent field."""
    return _field(obj, key, str, where) if key in obj else None


def _uuid(text: str, name: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ReceiptMalformed(f"the signed claims' {name} is not a UUID") from None


def _moment(seconds: int, name: str) -> datetime:
    if not 0 <= seconds <= _LATEST_TIMESTAMP:
        raise ReceiptMalformed(f"the signed claims' {name} is out of range")
    return datetime.fromtimestamp(seconds, UTC)


def _receipt_from_claims(claims: dict[str, Any]) -> Receipt:
    """Read the claims parrain's :meth:`Receipt.claims` wrote; derived fields are checked by
    writing the receipt again and comparing (see :func:`verify_receipt`)."""
    extension = _field(claims, EXTENSION, dict, "")
    services = _objects(claims, "services", "")
    if len(services) != 1:
        raise ReceiptMalformed("the signed claims must describe exactly one service")
    expires = extension.get("expiresAt")
    controllers = []
    for index, entry in enumerate(_objects(claims, "piiControllers", "")):
        where = f"piiControllers[{index}]."
        address = None
        if "address" in entry:
            fields = _field(entry, "address", dict, where)
            at = f"{where}address."
            region = fields.get("addressRegion")
            address = ControllerAddress(
                street=_field(fields, "streetAddress", str, at),
                locality=_field(fields, "addressLocality", str, at),
                postal_code=_field(fields, "postalCode", str, at),
                country=_field(fields, "addressCountry", str, at),
                region=None if region is None else _field(fields, "addressRegion", str, at),
            )
        controllers.append(
            Controller(
                name=_field(entry, "piiController", str, where),
                contact=_optional_text(entry, "contact", where),
                address=address,
                email=_optional_text(entry, "email", where),
                phone=_optional_text(entry, "phone", where),
                url=_optional_text(entry, "piiControllerUrl", where),
                on_behalf=_field(entry, "onBehalf", bool, where),
            )
        )
    purposes = []
    for index, entry in enumerate(_objects(services[0], "purposes", "services[0].")):
        where = f"services[0].purposes[{index}]."
        uses = _field(entry, "purposeCategory", list, where)
        categories = _field(entry, "piiCategory", list, where)
        third_party = entry.get("thirdPartyName")
        if len(uses) != 1 or not isinstance(uses[0], str):
            raise ReceiptMalformed(f"the signed claims' {where}purposeCategory must be one key")
        purposes.append(
            ReceiptPurpose(
                purpose=_field(entry, "purpose", str, where),
                data_use=uses[0],
                data_categories=tuple(categories),
                primary_purpose=_field(entry, "primaryPurpose", bool, where),
                third_party_name=(
                    None if third_party is None else _field(entry, "thirdPartyName", str, where)
                ),
            )
        )
    action = _field(extension, "action", str, "parrain.")
    if action not in set(ConsentAction):
        raise ReceiptMalformed("the signed claims' parrain.action is not granted or withdrawn")
    return Receipt(
        event_id=_uuid(_field(extension, "eventId", str, "parrain."), "parrain.eventId"),
        action=ConsentAction(action),
        occurred_at=_moment(_field(claims, "consentTimestamp", int, ""), "consentTimestamp"),
        member_id=_uuid(_field(claims, "piiPrincipalId", str, ""), "piiPrincipalId"),
        controllers=tuple(controllers),
        jurisdiction=_field(claims, "jurisdiction", str, ""),
        language=_field(claims, "language", str, ""),
        collection_method=_field(claims, "collectionMethod", str, ""),
        policy_url=_field(claims, "policyUrl", str, ""),
        service=_field(services[0], "service", str, "services[0]."),
        purposes=tuple(purposes),
        campaign_id=_uuid(_field(extension, "campaignId", str, "parrain."), "parrain.campaignId"),
        notice_sha256=_field(extension, "noticeSha256", str, "parrain."),
        notice_version=_field(extension, "noticeVersion", int, "parrain."),
        channels=tuple(_field(extension, "channels", list, "parrain.")),
        territories=tuple(_field(extension, "territories", list, "parrain.")),
        expires_at=(
            None
            if expires is None
            else _moment(_field(extension, "expiresAt", int, "parrain."), "parrain.expiresAt")
        ),
    )


def _signed_receipt(payload: bytes) -> tuple[Receipt, dict[str, Any]]:
    """The receipt in a verified payload, which must be exactly what parrain writes for it."""
    claims = _parse_json(payload, what="the signed claims", error=ReceiptMalformed)
    if not isinstance(claims, dict):
        raise ReceiptMalformed("the signed claims are not a JSON object")
    if claims.get("version") != KANTARA_VERSION:
        raise ReceiptMalformed(
            f"the signed claims declare version {_shown(claims.get('version'))}, "
            f"not {KANTARA_VERSION!r}"
        )
    if _field(claims, EXTENSION, dict, "").get("formatVersion") != FORMAT_VERSION:
        raise ReceiptMalformed(f"the signed claims are not parrain receipt format {FORMAT_VERSION}")
    try:
        receipt = _receipt_from_claims(claims)
    except ReceiptMalformed:
        raise
    except InvalidInput as error:
        raise ReceiptMalformed(
            f"the signed claims are not a valid receipt: {error.message}"
        ) from None
    differing = _differences(receipt.claims(), claims)
    if differing or receipt.canonical_json() != payload:
        raise ReceiptMalformed(
            "the signed claims are not in the form parrain writes"
            + (f" (at {_listed(differing)})" if differing else " (canonical JSON)")
        )
    return receipt, claims


def verify_receipt(
    data: bytes | str, public_keys: Mapping[str, Ed25519PublicKey]
) -> VerifiedReceipt:
    """Verify a receipt file or a bare compact JWS against trusted ``public_keys`` (by kid).

    In order: the input's size and shape, the JWS header (``alg`` must be EdDSA: ``none`` and
    every other algorithm are :class:`ReceiptAlgorithmRefused`; the ``typ``), the kid
    (:class:`ReceiptKeyUnknown`), the signature (:class:`ReceiptSignatureInvalid`), then the
    signed claims, which must be exactly what parrain writes, then the readable claims beside
    the JWS, if any, which must equal them (:class:`ReceiptClaimsMismatch`). Anything else
    wrong is :class:`ReceiptMalformed`. Every failure is an :class:`InvalidReceipt`.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptMalformed(f"a receipt is at most {MAX_RECEIPT_BYTES} bytes; this is larger")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ReceiptMalformed("the receipt is not UTF-8 text") from None
    # Only JSON's own whitespace is dropped (str.strip would also drop \x0b, \x85...): any
    # other change to the bytes must fail.
    text = text.removeprefix("\ufeff").strip(_JSON_WHITESPACE)
    readable: Any = None
    if text.startswith("{"):
        document = _parse_json(text, what="the receipt file", error=ReceiptMalformed)
        if not isinstance(document, dict) or not isinstance(document.get("jws"), str):
            raise ReceiptMalformed('the receipt file has no "jws" text')
        unexpected = sorted(set(document) - _FILE_KEYS)
        if unexpected:
            raise ReceiptMalformed(
                f"the receipt file has keys a receipt never has: {_listed(unexpected)}"
            )
        readable = document.get("receipt")
        if "receipt" in document and not isinstance(readable, dict):
            raise ReceiptMalformed('the receipt file\'s "receipt" is not a JSON object')
        token = document["jws"]
    else:
        token = text
    kid, payload = _open_jws(token, public_keys)
    receipt, claims = _signed_receipt(payload)
    if readable is not None:
        differing = _differences(claims, readable)
        if differing:
            raise ReceiptClaimsMismatch(
                "the readable claims differ from the signed ones at "
                f"{_listed(differing)}: the file was edited after signing, and only the signed "
                "claims count",
                paths=[_cut(path) for path in differing[:20]],
            )
    return VerifiedReceipt(
        receipt=receipt, claims=claims, kid=kid, development=is_development_key(kid)
    )


def verify_receipt_file(
    path: str | Path, public_keys: Mapping[str, Ed25519PublicKey]
) -> VerifiedReceipt:
    """:func:`verify_receipt` on a file's bytes; a file that cannot be read is
    :class:`ReceiptUnreadable`, and one too large is refused before it is read whole."""
    location = Path(path)
    try:
        with location.open("rb") as file:
            data = file.read(MAX_RECEIPT_BYTES + 1)
    except OSError as error:
        raise ReceiptUnreadable(
            f"the receipt file {str(location)!r} cannot be read: {error.strerror or 'I/O error'}"
        ) from None
    return verify_receipt(data, public_keys)
