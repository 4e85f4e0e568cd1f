"""Signed consent receipts: Kantara CR v1.1 claims, a compact EdDSA JWS, offline verification."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrain.consent.receipts import (
    JWS_TYPE,
    KANTARA_VERSION,
    MAX_RECEIPT_BYTES,
    ConsentAction,
    Controller,
    ControllerAddress,
    InvalidReceipt,
    Receipt,
    ReceiptPurpose,
    build_receipt,
    canonical_json,
    sign_receipt,
    summary,
    verify_receipt,
    verify_receipt_file,
)
from parrain.errors import InvalidInput
from parrain.kit.crypto import SigningKey, development_signing_key, verification_keys

KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))
KEYS = verification_keys(KEY)
MEMBER = UUID("0190f0a0-0000-7000-8000-000000000001")
EVENT = UUID("0190f0a0-0000-7000-8000-0000000000e1")
WITHDRAWAL_EVENT = UUID("0190f0a0-0000-7000-8000-0000000000e2")
CAMPAIGN = UUID("0190f0a0-0000-7000-8000-0000000000c1")
GRANTED_AT = datetime(2027, 3, 1, 9, 30, 15, tzinfo=UTC)
NOTICE_HASH = hashlib.sha256(b"the notice, version 3").hexdigest()
CONTROLLER = Controller(
    name="Exemple Marketplace SAS",
    contact="Data Protection Officer",
    address=ControllerAddress(
        street="1 rue de la Paix", locality="Paris", postal_code="75002", country="FR"
    ),
    email="dpo@exemple.fr",
    phone="+33 1 23 45 67 89",
    url="https://exemple.fr",
)
PHOTO_IN_ADS = ReceiptPurpose(
    purpose="Show your profile photo in our adverts",
    data_use="marketing.advertising.first_party",
    data_categories=("user.content.self_image",),
)

MALFORMED = "receipt_malformed"
SIGNATURE_INVALID = "receipt_signature_invalid"
KEY_UNKNOWN = "receipt_key_unknown"
ALGORITHM_REFUSED = "receipt_algorithm_refused"
CLAIMS_MISMATCH = "receipt_claims_mismatch"


def inputs(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": EVENT,
        "action": "granted",
        "occurred_at": GRANTED_AT,
        "member_id": MEMBER,
        "controllers": [CONTROLLER],
        "jurisdiction": "FR",
        "language": "en",
        "collection_method": "app: photo consent screen, 'Yes, use my photo' button",
        "policy_url": "https://exemple.fr/campaigns/spring/notices/en?version=3",
        "service": "Cash Rewards France",
        "purposes": [PHOTO_IN_ADS],
        "campaign_id": CAMPAIGN,
        "notice_sha256": NOTICE_HASH,
        "notice_version": 3,
        "channels": ["web", "app"],
        "territories": ["FR"],
        "expires_at": GRANTED_AT + timedelta(days=183),
    }
    values.update(changes)
    return values


def grant(**changes: Any) -> Receipt:
    return build_receipt(**inputs(**changes))


def withdrawal(**changes: Any) -> Receipt:
    return build_receipt(
        **inputs(
            event_id=WITHDRAWAL_EVENT,
            action="withdrawn",
            expires_at=None,
            occurred_at=GRANTED_AT + timedelta(days=9),
        )
        | changes
    )


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(header: dict[str, Any] | bytes, payload: bytes, key: SigningKey | None = KEY) -> str:
    """A compact JWS written here, independently of the module, signed by ``key`` (or not)."""
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    signing_input = f"{b64url(encoded)}.{b64url(payload)}"
    signature = key.sign(signing_input.encode()) if key is not None else b""
    return f"{signing_input}.{b64url(signature)}"


def header_of(kid: object = KEY.kid, **changes: Any) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": kid, "typ": JWS_TYPE} | changes


def file_of(jws: str, readable: bytes | None = None) -> bytes:
    """A receipt file written by hand: the readable claims as given, byte for byte."""
    if readable is None:
        return json.dumps({"jws": jws}).encode()
    return b'{"jws":' + json.dumps(jws).encode() + b',"receipt":' + readable + b"}"


def refused(data: bytes | str, keys: Any = KEYS) -> InvalidReceipt:
    with pytest.raises(InvalidReceipt) as caught:
        verify_receipt(data, keys)
    return caught.value


def flipped(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    changed = bytearray(blob)
    changed[position] ^= mask
    return bytes(changed)


def parses(data: bytes) -> bool:
    """Whether ``data`` is strict JSON (UTF-8, no duplicate keys), as a reader would take it."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except ValueError:
        return False
    return True


# Round trip and determinism -------------------------------------------------------------------


def test_a_signed_receipt_verifies_from_its_file_and_from_its_jws() -> None:
    receipt = grant()
    signed = sign_receipt(receipt, KEY)
    for data in (signed.to_file(), signed.to_file().decode(), signed.jws, signed.jws.encode()):
        verified = verify_receipt(data, KEYS)
        assert verified.receipt == receipt
        assert verified.claims == receipt.claims()
        assert verified.kid == signed.kid == KEY.kid
        assert verified.development is False
    both = verification_keys(OTHER_KEY, KEY)
    assert verify_receipt(signed.jws, both).receipt == receipt


def test_the_same_inputs_give_the_same_receipt_id_and_bytes() -> None:
    first, second = grant(), grant(channels=["app", "web", "app"])
    assert first == second
    assert (
        first.receipt_id
        == second.receipt_id
        == uuid5(UUID("6f1f5a52-6b9e-4b8e-9d55-706172726169"), f"consent-receipt\x1f{EVENT}")
    )
    assert first.canonical_json() == second.canonical_json()
    assert sign_receipt(first, KEY) == sign_receipt(second, KEY)  # Ed25519 is deterministic
    assert sign_receipt(first, KEY).to_file() == sign_receipt(second, KEY).to_file()
    # to the second, like Kantara's timestamps: the microseconds of the clock do not count
    assert grant(occurred_at=GRANTED_AT.replace(microsecond=999_999)) == first
    # the same instant in another time zone is the same receipt
    paris = timezone(timedelta(hours=1))
    assert grant(occurred_at=GRANTED_AT.astimezone(paris)) == first
    # another event is another receipt
    assert grant(event_id=UUID(int=7)).receipt_id != first.receipt_id


def test_the_signed_bytes_are_pinned() -> None:
    """A stored receipt must still verify, and be re-issued identically, after any refactoring."""
    signed = sign_receipt(grant(), KEY)
    header, payload, _signature = signed.jws.split(".")
    assert unb64url(header) == (
        b'{"alg":"EdDSA","kid":"' + KEY.kid.encode() + b'","typ":"parrain-consent-receipt+jws"}'
    )
    assert unb64url(payload) == canonical_json(grant().claims())
    assert hashlib.sha256(signed.jws.encode()).hexdigest() == (
        "b4df5c83b0a5c97df934b730d2977fd3e6b7ab23c51464c84f24692b5d33fcb5"
    )


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": [1, True, None], "a": {"é": "çà\n\u2028", "A": "\x01"}}
    assert canonical_json(value) == (
        '{"a":{"A":"\\u0001","é":"çà\\n\u2028"},"b":[1,true,null]}'.encode()
    )
    payload = canonical_json(grant().claims())
    assert b" " not in payload.replace(b"Cash Rewards France", b"").split(b'"collectionMethod"')[0]
    assert json.loads(payload) == grant().claims()


# The Kantara shape -------------------------------------------------------------------------


def test_the_claims_follow_kantara_cr_1_1_with_one_parrain_extension() -> None:
    claims = grant().claims()
    assert list(claims) == [
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "language",
        "piiPrincipalId",
        "piiControllers",
        "policyUrl",
        "services",
        "sensitive",
        "spiCat",
        "parrain",
    ]
    assert claims["version"] == KANTARA_VERSION == "KI-CR-v1.1.0"
    assert claims["jurisdiction"] == "FR"
    assert claims["consentTimestamp"] == int(GRANTED_AT.timestamp()) == 1_803_893_415
    assert claims["consentReceiptID"] == str(grant().receipt_id)
    assert claims["language"] == "en"
    assert claims["piiPrincipalId"] == str(MEMBER)
    assert claims["piiControllers"] == [
        {
            "piiController": "Exemple Marketplace SAS",
            "onBehalf": False,
            "contact": "Data Protection Officer",
            "address": {
                "streetAddress": "1 rue de la Paix",
                "addressLocality": "Paris",
                "postalCode": "75002",
                "addressCountry": "FR",
            },
            "email": "dpo@exemple.fr",
            "phone": "+33 1 23 45 67 89",
            "piiControllerUrl": "https://exemple.fr",
        }
    ]
    assert claims["services"] == [
        {
            "service": "Cash Rewards France",
            "purposes": [
                {
                    "purpose": "Show your profile photo in our adverts",
                    "purposeCategory": ["marketing.advertising.first_party"],
                    "consentType": "EXPLICIT",
                    "piiCategory": ["user.content.self_image"],
                    "primaryPurpose": False,
                    "termination": "Ends at 2027-08-31T09:30:15Z, or earlier if the member "
                    "withdraws it.",
                    "thirdPartyDisclosure": False,
                }
            ],
        }
    ]
    assert claims["sensitive"] is False
    assert claims["spiCat"] == []
    assert claims["parrain"] == {
        "formatVersion": 1,
        "action": "granted",
        "eventId": str(EVENT),
        "campaignId": str(CAMPAIGN),
        "noticeSha256": NOTICE_HASH,
        "noticeVersion": 3,
        "channels": ["app", "web"],
        "territories": ["FR"],
        "expiresAt": 1_819_704_615,
    }


def test_a_withdrawal_receipt_ends_the_consent_when_it_happens() -> None:
    receipt = withdrawal()
    claims = receipt.claims()
    assert claims["parrain"]["action"] == "withdrawn"
    assert claims["parrain"]["expiresAt"] is None
    assert claims["services"][0]["purposes"][0]["termination"] == (
        "Withdrawn by the member at 2027-03-10T09:30:15Z."
    )
    assert receipt.receipt_id != grant().receipt_id
    verified = verify_receipt(sign_receipt(receipt, KEY).to_file(), KEYS)
    assert verified.receipt.action is ConsentAction.WITHDRAWN


def test_optional_kantara_fields_appear_only_when_given() -> None:
    shared = ReceiptPurpose(
        purpose="Show your testimonial on our partner's site",
        data_use="marketing.advertising.third_party",
        data_categories=("user.content.public", "user.account.username", "user.content.public"),
        third_party_name="Partner Media Ltd",
    )
    bare = dataclasses.replace(CONTROLLER, url=None, on_behalf=True)
    receipt = grant(purposes=[PHOTO_IN_ADS, shared], controllers=[bare])
    claims = receipt.claims()
    assert "piiControllerUrl" not in claims["piiControllers"][0]
    assert claims["piiControllers"][0]["onBehalf"] is True
    second = claims["services"][0]["purposes"][1]
    assert second["thirdPartyDisclosure"] is True
    assert second["thirdPartyName"] == "Partner Media Ltd"
    assert second["piiCategory"] == ["user.account.username", "user.content.public"]
    assert verify_receipt(sign_receipt(receipt, KEY).to_file(), KEYS).receipt == receipt


# One changed byte --------------------------------------------------------------------------


def test_one_changed_byte_of_the_signed_claims_fails_through_the_jws_and_the_file() -> None:
    signed = sign_receipt(grant(), KEY)
    header, payload, signature = signed.jws.split(".")
    claims = unb64url(payload)
    readable = json.dumps(grant().claims()).encode()
    for position in range(len(claims)):
        altered = f"{header}.{b64url(flipped(claims, position))}.{signature}"
        assert refused(altered).code == SIGNATURE_INVALID
        assert refused(file_of(altered, readable)).code == SIGNATURE_INVALID


def test_one_changed_byte_of_the_signature_fails() -> None:
    signed = sign_receipt(grant(), KEY)
    header, payload, signature = signed.jws.split(".")
    raw = unb64url(signature)
    assert len(raw) == 64
    for position in range(len(raw)):
        for mask in (0x01, 0x80):
            altered = f"{header}.{payload}.{b64url(flipped(raw, position, mask))}"
            assert refused(altered).code == SIGNATURE_INVALID
            assert refused(file_of(altered)).code == SIGNATURE_INVALID


def test_one_changed_byte_of_the_readable_claims_fails() -> None:
    signed = sign_receipt(grant(), KEY)
    readable = canonical_json(grant().claims())
    assert verify_receipt(file_of(signed.jws, readable), KEYS).receipt == grant()
    for position in range(len(readable)):
        document = file_of(signed.jws, flipped(readable, position))
        expected = CLAIMS_MISMATCH if parses(document) else MALFORMED
        assert refused(document).code == expected


def test_one_changed_byte_anywhere_in_the_file_fails() -> None:
    document = sign_receipt(grant(), KEY).to_file()
    jws_start = document.index(b'"jws": "') + len(b'"jws": "')
    for position in range(len(document)):
        error = refused(flipped(document, position))
        if position < jws_start - 8:  # the readable claims
            expected = {CLAIMS_MISMATCH, MALFORMED}
        else:  # the JWS, its key and the end of the file
            expected = {MALFORMED, SIGNATURE_INVALID, ALGORITHM_REFUSED, KEY_UNKNOWN}
        assert error.code in expected, (position, error.message)


@settings(max_examples=300)
@given(data=st.data())
def test_any_changed_character_of_the_jws_is_refused(data: st.DataObject) -> None:
    jws = sign_receipt(grant(), KEY).jws
    position = data.draw(st.integers(0, len(jws) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != jws[position]))
    error = refused(jws[:position] + replacement + jws[position + 1 :])
    assert error.code in {MALFORMED, SIGNATURE_INVALID, ALGORITHM_REFUSED, KEY_UNKNOWN}


def test_a_base64url_change_that_keeps_the_decoded_bytes_is_still_refused() -> None:
    """Unused low bits of the last character: a lax decoder would ignore the change."""
    header, payload, signature = sign_receipt(grant(), KEY).jws.split(".")
    assert len(signature) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 0x01]
    assert unb64url(signature[:-1] + twin) == unb64url(signature)
    error = refused(f"{header}.{payload}.{signature[:-1]}{twin}")
    assert error.code == MALFORMED
    assert "canonical base64url" in error.message


# Keys, algorithms and shapes that are refused ----------------------------------------------


def test_a_receipt_signed_by_another_key_is_refused() -> None:
    signed = sign_receipt(grant(), OTHER_KEY)
    error = refused(signed.jws)
    assert error.code == KEY_UNKNOWN
    assert error.details == {"kid": OTHER_KEY.kid, "known": [KEY.kid]}
    assert OTHER_KEY.kid in error.message
    assert refused(signed.jws, {}).code == KEY_UNKNOWN
    # another key filed under the right kid: the signature, not the kid, decides
    assert refused(signed.jws, {OTHER_KEY.kid: KEY.public_key}).code == SIGNATURE_INVALID
    assert refused(sign_receipt(grant(), KEY).jws, {KEY.kid: OTHER_KEY.public_key}).code == (
        SIGNATURE_INVALID
    )


@pytest.mark.parametrize("algorithm", ["none", "None", "HS256", "RS256", "ES256", "eddsa", None])
def test_every_algorithm_but_eddsa_is_refused(algorithm: str | None) -> None:
    payload = canonical_json(grant().claims())
    header = header_of(alg=algorithm) if algorithm else {"kid": KEY.kid, "typ": JWS_TYPE}
    unsigned = forge(header, payload, key=None)
    error = refused(unsigned)
    assert error.code == ALGORITHM_REFUSED
    assert "EdDSA (Ed25519) only" in error.message
    assert error.details == {"alg": algorithm}
    # HS256 keyed with the public key: the classic confusion of a verifier that trusts alg
    signing_input = unsigned.rsplit(".", 1)[0]
    mac = hmac.digest(KEY.public_key.public_bytes_raw(), signing_input.encode(), "sha256")
    assert refused(f"{signing_input}.{b64url(mac)}").code == ALGORITHM_REFUSED
    assert refused(file_of(unsigned)).code == ALGORITHM_REFUSED


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (header_of(typ="JWT"), "is not 'parrain-consent-receipt+jws'"),
        ({"alg": "EdDSA", "kid": KEY.kid}, "is not 'parrain-consent-receipt+jws'"),
        (header_of(crit=["exp"]), "parameters a receipt never has: 'crit'"),
        (header_of(jwk={"kty": "OKP"}), "parameters a receipt never has: 'jwk'"),
        (header_of(kid=""), "no key id"),
        (header_of(kid=7), "no key id"),
        (b'["EdDSA"]', "header is not a JSON object"),
        (b"{not json", "header is not valid JSON"),
        (b'{"alg":"EdDSA","alg":"none","kid":"x","typ":"t"}', "appears twice"),
        (b"\xff\xfe", "header is not UTF-8"),
    ],
)
def test_a_header_of_the_wrong_shape_is_malformed(
    header: dict[str, Any] | bytes, expected: str
) -> None:
    error = refused(forge(header, canonical_json(grant().claims())))
    assert error.code == MALFORMED
    assert expected in error.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "three base64url parts"),
        (b"   \n", "three base64url parts"),
        (b"abc", "three base64url parts"),
        (b"a.b", "three base64url parts"),
        (b"a.b.c.d", "three base64url parts"),
        (b"..", "header is not base64url"),
        (b"bm90.*.AA", "header is not valid JSON"),
        (b"\xff", "not UTF-8"),
        (b"{}", 'no "jws" text'),
        (b"[]", "three base64url parts"),
        (b'{"jws": 1}', 'no "jws" text'),
        (b'{"jws": "a.b.c", "signature": "x"}', "keys a receipt never has: signature"),
        (b'{"jws": "a.b.c", "receipt": []}', '"receipt" is not a JSON object'),
        (b'{"jws": "a.b.c", "jws": "d.e.f"}', "appears twice"),
        (b'{"jws": "a.b.c"', "receipt file is not valid JSON"),
        (b"{" * 5000 + b"}" * 5000, "receipt file"),
        (b"x" * (MAX_RECEIPT_BYTES + 1), f"at most {MAX_RECEIPT_BYTES} bytes"),
    ],
)
def test_input_that_is_not_a_receipt_is_malformed(data: bytes, expected: str) -> None:
    error = refused(data)
    assert error.code == MALFORMED
    assert expected in error.message


def test_malformed_base64url_and_truncated_receipts_are_refused() -> None:
    header, payload, signature = sign_receipt(grant(), KEY).jws.split(".")
    for bad in (f"{payload[:10]}*{payload[11:]}", f"{payload}=", f"{payload[:-1]}+"):
        error = refused(f"{header}.{bad}.{signature}")
        assert error.code == MALFORMED
        assert "payload is not" in error.message
    # one character more is base64url for other bytes, which the signature does not cover
    assert refused(f"{header}.{payload}A.{signature}").code in {MALFORMED, SIGNATURE_INVALID}
    jws = f"{header}.{payload}.{signature}"
    for length in range(len(jws)):
        assert refused(jws[:length]).code in {MALFORMED, SIGNATURE_INVALID}
    document = sign_receipt(grant(), KEY).to_file()
    for length in range(len(document) - 1):  # all but the final newline
        assert refused(document[:length]).code == MALFORMED


def test_signed_claims_must_be_exactly_what_parrain_writes() -> None:
    """Even validly signed (say, by a buggy or foreign signer holding the key), claims that
    parrain would not write are refused: one spelling per receipt."""
    claims = grant().claims()

    def signed(value: Any, *, raw: bytes | None = None) -> InvalidReceipt:
        return refused(forge(header_of(), raw if raw is not None else canonical_json(value)))

    assert verify_receipt(forge(header_of(), canonical_json(claims)), KEYS).receipt == grant()
    assert "canonical JSON" in signed(None, raw=json.dumps(claims).encode()).message
    cases: list[tuple[dict[str, Any], str]] = [
        (claims | {"publicKey": "x"}, "at publicKey"),
        (claims | {"consentReceiptID": str(UUID(int=1))}, "at consentReceiptID"),
        (claims | {"sensitive": True}, "at sensitive"),
        (claims | {"version": "KI-CR-v1.0.0"}, "declare version 'KI-CR-v1.0.0'"),
        (claims | {"consentTimestamp": 1.5e9}, "consentTimestamp must be a whole number"),
        (claims | {"piiPrincipalId": "ann@example.org"}, "piiPrincipalId is not a UUID"),
        (claims | {"piiPrincipalId": str(MEMBER).upper()}, "at piiPrincipalId"),
        (claims | {"jurisdiction": "fr"}, "at jurisdiction"),
        (claims | {"jurisdiction": "Worldwide"}, "'Worldwide' is not an ISO 3166"),
        (claims | {"parrain": claims["parrain"] | {"noticeVersion": True}}, "noticeVersion"),
        (claims | {"parrain": claims["parrain"] | {"action": "refused"}}, "action is not"),
        (claims | {"parrain": claims["parrain"] | {"formatVersion": 2}}, "receipt format 1"),
        (claims | {"parrain": claims["parrain"] | {"channels": ["web", "app"]}}, "channels"),
        (claims | {"parrain": claims["parrain"] | {"channels": ["any media"]}}, "channel names"),
        (claims | {"parrain": claims["parrain"] | {"expiresAt": None}}, "a grant needs"),
        (claims | {"services": []}, "services must be a list of objects"),
        (claims | {"services": claims["services"] * 2}, "exactly one service"),
        ({k: v for k, v in claims.items() if k != "language"}, "language must be text"),
        ([claims], "not a JSON object"),  # type: ignore[list-item]
    ]
    for value, expected in cases:
        error = signed(value)
        assert error.code == MALFORMED, expected
        assert expected in error.message, (expected, error.message)


def test_readable_claims_that_differ_from_the_signed_ones_are_refused() -> None:
    signed = sign_receipt(grant(), KEY)
    claims = grant().claims()
    edits: list[tuple[dict[str, Any], list[str]]] = [
        (claims | {"parrain": claims["parrain"] | {"action": "withdrawn"}}, ["parrain.action"]),
        (claims | {"sensitive": 0}, ["sensitive"]),  # 0 == False in Python, not in JSON
        (claims | {"noticeVersion": 3}, ["noticeVersion"]),
        ({k: v for k, v in claims.items() if k != "spiCat"}, ["spiCat"]),
        (claims | {"piiPrincipalId": "ann@example.org"}, ["piiPrincipalId"]),
    ]
    for readable, paths in edits:
        error = refused(file_of(signed.jws, json.dumps(readable).encode()))
        assert error.code == CLAIMS_MISMATCH
        assert error.details["paths"] == paths
        assert "only the signed claims count" in error.message
    # re-indented or reordered readable claims are the same claims
    reordered = json.dumps(claims, sort_keys=True, indent=4).encode()
    assert verify_receipt(file_of(signed.jws, reordered), KEYS).receipt == grant()


# Inputs -------------------------------------------------------------------------------------


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2027, 3, 1, 9, 30)  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidInput, match="occurred_at must be a timezone-aware datetime"):
        grant(occurred_at=naive)
    with pytest.raises(InvalidInput, match="expires_at must be a timezone-aware datetime"):
        grant(expires_at=naive + timedelta(days=30))
    with pytest.raises(InvalidInput, match="timezone-aware"):
        Receipt(**(dataclasses.asdict(grant()) | {"occurred_at": naive}))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"expires_at": None}, "a grant needs expires_at"),
        ({"expires_at": GRANTED_AT}, "expires_at must come after occurred_at"),
        ({"expires_at": GRANTED_AT + timedelta(milliseconds=900)}, "must come after"),
        ({"action": "refused"}, "action must be 'granted' or 'withdrawn'"),
        ({"member_id": "ann@example.org"}, "member_id must be a UUID (a pseudonymous id), not str"),
        ({"member_id": str(MEMBER)}, "member_id must be a UUID"),
        ({"controllers": []}, "at least one Controller"),
        ({"purposes": []}, "at least one ReceiptPurpose"),
        ({"jurisdiction": "EU"}, "jurisdiction: 'EU' is not an ISO 3166"),
        ({"territories": ["worldwide"]}, "territories: 'worldwide' is not an ISO 3166"),
        ({"territories": []}, "territories must not be empty"),
        ({"territories": "FR"}, "territories must be a list"),
        ({"channels": ["any media"]}, "channel names such as app"),
        ({"language": "english"}, "is not an ISO 639-1"),
        ({"notice_sha256": NOTICE_HASH.upper()}, "64 lowercase hex"),
        ({"notice_version": 0}, "notice_version must be a whole number from 1"),
        ({"notice_version": True}, "notice_version must be a whole number from 1"),
        ({"policy_url": "exemple.fr/notice"}, "policy_url must be an http or https address"),
        ({"collection_method": " app "}, "without surrounding spaces"),
        ({"collection_method": "app\nscreen"}, "control characters"),
        ({"service": "x" * 301}, "at most 300 characters"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        grant(**changes)
    assert caught.value.code == "invalid_input"
    assert expected in caught.value.message


def test_a_withdrawal_carries_no_expiry() -> None:
    with pytest.raises(InvalidInput, match="expires_at is only for a grant"):
        withdrawal(expires_at=GRANTED_AT + timedelta(days=30))


def test_purposes_and_controllers_check_their_own_fields() -> None:
    with pytest.raises(InvalidInput, match="fideslang keys"):
        ReceiptPurpose(purpose="Ads", data_use="Marketing", data_categories=("user",))
    with pytest.raises(InvalidInput, match="fideslang keys"):
        ReceiptPurpose(purpose="Ads", data_use="marketing", data_categories=("user photo",))
    with pytest.raises(InvalidInput, match="must not be empty"):
        ReceiptPurpose(purpose="Ads", data_use="marketing", data_categories=())
    with pytest.raises(InvalidInput, match="controller email must be an email address"):
        dataclasses.replace(CONTROLLER, email="dpo at exemple.fr")
    with pytest.raises(InvalidInput, match="address country"):
        dataclasses.replace(CONTROLLER.address, country="Frankreich")


def test_a_receipt_holds_no_personal_data_but_the_member_pseudonym() -> None:
    """The member appears once, as a UUID; every name, email or phone is the controller's."""
    member_fields = {"member_id"}
    receipt_fields = {field.name for field in dataclasses.fields(Receipt)}
    assert receipt_fields == {
        "event_id",
        "action",
        "occurred_at",
        "member_id",
        "controllers",
        "jurisdiction",
        "language",
        "collection_method",
        "policy_url",
        "service",
        "purposes",
        "campaign_id",
        "notice_sha256",
        "notice_version",
        "channels",
        "territories",
        "expires_at",
    }
    assert set(inspect.signature(build_receipt).parameters) == receipt_fields
    assert receipt_fields & {"email", "name", "username", "phone", "ip", "paypal"} == set()
    assert member_fields <= receipt_fields

    def keys_and_strings(value: Any, path: str = "") -> list[tuple[str, Any]]:
        if isinstance(value, dict):
            return [pair for k, v in value.items() for pair in keys_and_strings(v, f"{path}.{k}")]
        if isinstance(value, list):
            return [pair for item in value for pair in keys_and_strings(item, path)]
        return [(path, value)]

    leaves = keys_and_strings(grant().claims())
    assert [path for path, value in leaves if value == str(MEMBER)] == [".piiPrincipalId"]
    personal_keys = ("email", "phone", "contact", "address", "piiController")
    for path, _value in leaves:
        if any(word in path for word in personal_keys):
            assert path.startswith(".piiControllers"), path


# Summary and files --------------------------------------------------------------------------


def test_the_summary_says_what_was_agreed_by_whom_where_and_until_when() -> None:
    verified = verify_receipt(sign_receipt(grant(), KEY).to_file(), KEYS)
    text = summary(verified)
    assert text == verified.summary
    assert text.startswith(
        f"On 2027-03-01 at 09:30:15 UTC, member {MEMBER} agreed that Exemple Marketplace SAS "
        'may use data of category user.content.self_image for "Show your profile photo in our '
        'adverts" (marketing.advertising.first_party), on app and web, in France (FR), until '
        "2027-08-31 at 09:30:15 UTC unless the member withdraws sooner."
    )
    for part in (
        "app: photo consent screen, 'Yes, use my photo' button",
        "in English",
        f"notice version 3 (SHA-256 {NOTICE_HASH})",
        f"campaign {CAMPAIGN}",
        f"Receipt {grant().receipt_id}, signed with key {KEY.kid}",
    ):
        assert part in text
    assert "\n" not in text
    assert "Warning" not in text


def test_the_summary_of_a_withdrawal_and_of_a_development_key() -> None:
    key = development_signing_key()
    receipt = withdrawal(territories=["GB", "FR"], language="fr")
    verified = verify_receipt(sign_receipt(receipt, key).jws, verification_keys(key))
    assert verified.development is True
    text = summary(verified)
    assert text.startswith(
        f"On 2027-03-10 at 09:30:15 UTC, member {MEMBER} withdrew the consent that let "
        "Exemple Marketplace SAS use data of category user.content.self_image"
    )
    assert "in France (FR) and United Kingdom (GB)" in text
    assert "from then on that data may not be used" in text
    assert "in French" in text
    assert text.endswith(
        "public development key, which anyone can compute, so this receipt proves nothing."
    )


def test_a_receipt_file_verifies_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "receipt.json"
    path.write_bytes(sign_receipt(grant(), KEY).to_file())
    verified = verify_receipt_file(path, KEYS)
    assert verified.receipt == grant()
    assert verify_receipt_file(str(path), KEYS).kid == KEY.kid
    for unreadable in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(InvalidReceipt) as caught:
            verify_receipt_file(unreadable, KEYS)
        assert caught.value.code == "receipt_unreadable"
        assert "cannot be read" in caught.value.message
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_RECEIPT_BYTES * 4))
    with pytest.raises(InvalidReceipt, match="at most"):
        verify_receipt_file(big, KEYS)


# Properties ---------------------------------------------------------------------------------

_TEXT = (
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,3}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    purpose=_TEXT,
    method=_TEXT,
    service=_TEXT,
    use=_KEY,
    categories=st.lists(_KEY, min_size=1, max_size=4),
    channels=st.lists(st.sampled_from(["app", "web", "email", "sms", "print"]), min_size=1),
    seconds=st.integers(0, 4_000_000_000),
    days=st.integers(1, 365),
    withdrawn=st.booleans(),
)
def test_any_receipt_round_trips_and_is_deterministic(
    purpose: str,
    method: str,
    service: str,
    use: str,
    categories: list[str],
    channels: list[str],
    seconds: int,
    days: int,
    withdrawn: bool,
) -> None:
    at = datetime.fromtimestamp(seconds, UTC)
    receipt = build_receipt(
        **inputs(
            action="withdrawn" if withdrawn else "granted",
            occurred_at=at,
            expires_at=None if withdrawn else at + timedelta(days=days),
            collection_method=method,
            service=service,
            purposes=[
                ReceiptPurpose(purpose=purpose, data_use=use, data_categories=tuple(categories))
            ],
            channels=channels,
        )
    )
    signed = sign_receipt(receipt, KEY)
    assert sign_receipt(receipt, KEY) == signed
    for data in (signed.to_file(), signed.jws):
        verified = verify_receipt(data, KEYS)
        assert verified.receipt == receipt
        assert canonical_json(verified.claims) == receipt.canonical_json()


@settings(max_examples=200)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_input_is_refused_with_a_receipt_error_only(data: bytes | str) -> None:
    with pytest.raises(InvalidReceipt):
        verify_receipt(data, KEYS)
