"""Ed25519 signing keys: loading (base64url seed, PEM), derived key ids, development key."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from parrain.kit.crypto import (
    KID_LENGTH,
    SigningKey,
    development_signing_key,
    encode_public_key,
    is_development_key,
    key_id,
    load_public_key,
    load_verification_keys,
    verification_keys,
)
from parrain.kit.errors import InvalidKeyMaterial

# RFC 8032 §7.1, test 1: the seed, its public key and the signature of the empty message.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC_KID = hashlib.sha256(RFC_PUBLIC).hexdigest()[:16]


def b64url(raw: bytes, *, padded: bool = False) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def pkcs8_pem(seed: bytes) -> str:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_a_seed_in_base64url_gives_the_rfc_8032_key_and_signature() -> None:
    key = SigningKey.parse(b64url(RFC_SEED))
    assert key.seed == RFC_SEED
    assert key.public_key.public_bytes_raw() == RFC_PUBLIC
    assert key.sign(b"") == RFC_SIGNATURE  # deterministic: the published bytes, every time
    assert key.kid == RFC_KID == "21fe31dfa154a261"
    assert len(key.kid) == KID_LENGTH == 16
    assert key.development is False
    # padding, surrounding whitespace and a trailing newline (a secrets file) change nothing
    assert SigningKey.parse(f"  {b64url(RFC_SEED, padded=True)}\n") == key


def test_a_pkcs8_pem_gives_the_same_key_as_its_seed() -> None:
    from_pem = SigningKey.parse(pkcs8_pem(RFC_SEED))
    assert from_pem == SigningKey.parse(b64url(RFC_SEED))
    assert from_pem.kid == RFC_KID
    assert SigningKey.parse(from_pem.to_pem()) == from_pem
    assert from_pem.to_pem().startswith("-----BEGIN PRIVATE KEY-----")


def test_the_kid_is_derived_from_the_public_key_alone() -> None:
    key = SigningKey(RFC_SEED)
    assert key_id(key.public_key) == key.kid == RFC_KID
    assert key_id(load_public_key(encode_public_key(key.public_key))) == RFC_KID
    assert SigningKey(bytes(32)).kid != RFC_KID
    assert encode_public_key(key.public_key) == b64url(RFC_PUBLIC)


@given(seed=st.binary(min_size=32, max_size=32))
def test_any_seed_round_trips_through_its_text_and_pem(seed: bytes) -> None:
    key = SigningKey(seed)
    assert SigningKey.parse(b64url(seed)) == key
    assert SigningKey.parse(key.to_pem()) == key
    assert key.kid == hashlib.sha256(key.public_key.public_bytes_raw()).hexdigest()[:16]
    key.public_key.verify(key.sign(b"receipt"), b"receipt")


def test_generated_keys_are_random() -> None:
    keys = {SigningKey.generate().kid for _ in range(20)}
    assert len(keys) == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no signing key is given"),
        (b64url(RFC_SEED[:31]), "must decode to 32 bytes, not 31"),
        (b64url(RFC_SEED + b"\x00"), "must decode to 32 bytes, not 33"),
        (base64.b64encode(b"\xfb" * 32).decode(), "neither a PEM block nor base64url"),
        (b64url(RFC_SEED)[:-1] + "!", "neither a PEM block nor base64url"),
        (b64url(RFC_SEED)[:-2], "not valid base64url"),
        (
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
            "the signing key PEM cannot be read",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            "the signing key PEM is encrypted",
        ),
    ],
)
def test_bad_signing_keys_are_refused_without_echoing_them(text: str, expected: str) -> None:
    with pytest.raises(InvalidKeyMaterial) as caught:
        SigningKey.parse(text)
    error = caught.value
    assert error.code == "invalid_key_material"
    assert expected in error.message
    shown = f"{error} {error!r} {error.to_dict()}"
    assert b64url(RFC_SEED)[:12] not in shown
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_a_pem_of_another_key_type_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(InvalidKeyMaterial, match="not an Ed25519 key"):
        SigningKey.parse(pem)
    with pytest.raises(InvalidKeyMaterial, match="not an Ed25519 key"):
        load_public_key(public_pem_of(other.public_key()))
    encrypted = Ed25519PrivateKey.from_private_bytes(RFC_SEED).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(InvalidKeyMaterial, match="encrypted"):
        SigningKey.parse(encrypted.decode())
    with pytest.raises(InvalidKeyMaterial, match="32-byte seed"):
        SigningKey(RFC_SEED[:16])


def public_pem_of(public: ec.EllipticCurvePublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_a_signing_key_never_shows_its_seed() -> None:
    key = SigningKey(RFC_SEED)
    shown = f"{key!r} {key} {development_signing_key()!r}"
    assert "seed" not in shown
    assert RFC_SEED.hex()[:16] not in shown
    assert b64url(RFC_SEED)[:12] not in shown
    assert "development=False" in shown


def test_the_development_key_is_fixed_marked_and_not_a_configured_key() -> None:
    key = development_signing_key()
    assert key.development is True
    assert key == development_signing_key()
    assert (
        key.seed
        == hashlib.sha256(
            b"parrain development signing key, public by construction, never for production"
        ).digest()
    )
    assert key.kid == development_signing_key().kid
    assert is_development_key(key.kid)
    assert not is_development_key(RFC_KID)
    # the same seed loaded as a configured key is not marked: only the function marks it
    assert SigningKey.parse(b64url(key.seed)).development is False
    assert SigningKey.parse(b64url(key.seed)).kid == key.kid


def test_public_keys_load_from_base64url_and_pem() -> None:
    public = SigningKey(RFC_SEED).public_key
    assert load_public_key(b64url(RFC_PUBLIC)) == public
    assert load_public_key(public_pem(public)) == public
    with pytest.raises(InvalidKeyMaterial, match="must decode to 32 bytes, not 31"):
        load_public_key(b64url(RFC_PUBLIC[:31]))
    with pytest.raises(InvalidKeyMaterial, match="no public key"):
        load_public_key(" \n")
    with pytest.raises(InvalidKeyMaterial, match="public key PEM cannot be read"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")


def test_verification_keys_are_a_map_by_kid() -> None:
    rfc, other = SigningKey(RFC_SEED), SigningKey(bytes(range(32)))
    keys = verification_keys(rfc, other.public_key, rfc.public_key)
    assert keys == {RFC_KID: rfc.public_key, other.kid: other.public_key}
    pem = public_pem(other.public_key)
    text = f"{b64url(RFC_PUBLIC)},\n{pem}\n{encode_public_key(other.public_key)}"
    assert load_verification_keys(text) == keys
    with pytest.raises(InvalidKeyMaterial, match="no public key is given"):
        load_verification_keys(" , \n")
    with pytest.raises(InvalidKeyMaterial, match=r"public key 2: .* must decode to 32 bytes"):
        load_verification_keys(f"{b64url(RFC_PUBLIC)} {b64url(RFC_PUBLIC[:30])}")
