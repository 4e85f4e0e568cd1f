"""Signed consent receipts, verifiable offline with nothing but the public keys. Pure.

Every grant or withdrawal of an optional consent yields a receipt the member keeps and a
regulator can check without parrain's database. Its claims follow the Kantara Initiative
Consent Receipt Specification v1.1 (``KI-CR-v1.1.0``): its field names and types, with
fideslang keys for ``purposeCategory`` (the data use) and ``piiCategory`` (the data
categories). What parrain records beyond the spec (the action, the notice's hash and version,
the campaign, channels, territories, expiry) sits in one extension object, ``"parrain"``,
never in invented top-level names. ``piiPrincipalId`` is the member's pseudonymous id (a
UUID): a receipt holds no personal data about the member beyond it.

**Canonical JSON** (the signed bytes): the claims serialised with object keys sorted by code
point, ``","`` and ``":"`` as the only separators (no whitespace outside strings), non-ASCII
characters written as themselves and the whole encoded as UTF-8; strings escaped as JSON
requires (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other controls as lowercase ``\\u00XX``).
A receipt holds only ASCII keys, strings, integers below 2^53, booleans, null, arrays and
objects, so this is exactly RFC 8785 (JCS) for every receipt: one spelling per receipt.

**Signature**: a compact JWS (RFC 7515) with protected header ``{"alg": "EdDSA", "kid": ...,
"typ": "parrain-consent-receipt+jws"}`` (Ed25519, RFC 8037), itself in canonical JSON, over
``BASE64URL(header) "." BASE64URL(canonical claims)``; base64url without padding. Ed25519
is deterministic, so the same receipt signed with the same key gives the same bytes.

**The file** handed to members (:meth:`SignedReceipt.to_file`) is a UTF-8 JSON object with
the readable claims and the JWS: ``{"receipt": {...}, "jws": "<header>.<claims>.<sig>"}``.
The bare JWS verifies as well. Only the signed payload counts: readable claims that differ
from it by anything are refused. See docs/adr/0013-signed-consent-receipts.md.
"""

from parrain.consent.receipts.claims import (
    CONSENT_TYPE,
    EXTENSION,
    FORMAT_VERSION,
    KANTARA_VERSION,
    ConsentAction,
    Controller,
    ControllerAddress,
    Receipt,
    ReceiptPurpose,
    build_receipt,
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
from parrain.consent.receipts.jws import (
    JWS_ALGORITHM,
    JWS_TYPE,
    MAX_RECEIPT_BYTES,
    SignedReceipt,
    VerifiedReceipt,
    sign_receipt,
    verify_receipt,
    verify_receipt_file,
)
from parrain.consent.receipts.summary import summary

__all__ = [
    "CONSENT_TYPE",
    "EXTENSION",
    "FORMAT_VERSION",
    "JWS_ALGORITHM",
    "JWS_TYPE",
    "KANTARA_VERSION",
    "MAX_RECEIPT_BYTES",
    "ConsentAction",
    "Controller",
    "ControllerAddress",
    "InvalidReceipt",
    "Receipt",
    "ReceiptAlgorithmRefused",
    "ReceiptClaimsMismatch",
    "ReceiptKeyUnknown",
    "ReceiptMalformed",
    "ReceiptPurpose",
    "ReceiptSignatureInvalid",
    "ReceiptUnreadable",
    "SignedReceipt",
    "VerifiedReceipt",
    "build_receipt",
    "canonical_json",
    "sign_receipt",
    "summary",
    "verify_receipt",
    "verify_receipt_file",
]
