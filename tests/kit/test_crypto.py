"""Personal-data cryptography: envelope encryption, rotation, shredding, lookup hashes, keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from parrain.config import CryptoSettings, Settings
from parrain.errors import InvalidInput
from parrain.kit.crypto import (
    LOOKUP_HASH_LENGTH,
    LookupKey,
    MasterKey,
    MasterKeyring,
    WrappedKey,
    decrypt_field,
    development_keyring,
    development_lookup_key,
    encrypt_field,
    lookup_hash,
    new_data_key,
    normalise_email,
    normalise_identifier,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from parrain.kit.crypto._framing import frame
from parrain.kit.errors import (
    DecryptionFailed,
    InvalidKeyMaterial,
    KeysNotConfigured,
    UnknownKeyId,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
LOOKUP = LookupKey(bytes(range(200, 232)))
SUBJECT = "member:0190f0a0-0000-7000-8000-000000000001"
OTHER_SUBJECT = "member:0190f0a0-0000-7000-8000-000000000002"
EMAIL_CONTEXT = f"{SUBJECT}:email"


def b64(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


def keyring_a() -> MasterKeyring:
    return MasterKeyring(keys=(MasterKey("a", KEY_A),), current_kid="a")


def keyring_ab(current: str) -> MasterKeyring:
    return MasterKeyring(keys=(MasterKey("a", KEY_A), MasterKey("b", KEY_B)), current_kid=current)


def keyring_b() -> MasterKeyring:
    return MasterKeyring(keys=(MasterKey("b", KEY_B),), current_kid="b")


def flipped(blob: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(blob)
    changed[position] ^= mask
    return bytes(changed)


# Field encryption -------------------------------------------------------------------------


@given(plaintext=st.text(), context=st.text(min_size=1))
def test_any_text_round_trips_through_field_encryption(plaintext: str, context: str) -> None:
    data_key = new_data_key()
    ciphertext = encrypt_field(data_key, plaintext, context=context)
    assert decrypt_field(data_key, ciphertext, context=context) == plaintext


def test_a_field_ciphertext_is_version_nonce_sealed_text_and_tag() -> None:
    data_key = new_data_key()
    first = encrypt_field(data_key, "ann@example.org", context=EMAIL_CONTEXT)
    second = encrypt_field(data_key, "ann@example.org", context=EMAIL_CONTEXT)
    assert first[0] == second[0] == 1
    assert len(first) == 1 + 12 + len("ann@example.org") + 16 == 44
    assert first[1:13] != second[1:13]  # a fresh nonce each time...
    assert first != second  # ...so equal texts never give equal bytes
    assert b"ann@example.org" not in first
    assert decrypt_field(data_key, second, context=EMAIL_CONTEXT) == "ann@example.org"
    assert len(encrypt_field(data_key, "", context=EMAIL_CONTEXT)) == 29


def test_flipping_any_bit_of_a_field_ciphertext_fails_to_decrypt() -> None:
    data_key = new_data_key()
    ciphertext = encrypt_field(data_key, "Ann Lee", context=EMAIL_CONTEXT)
    for position in range(len(ciphertext)):
        for mask in (0x01, 0x80):
            with pytest.raises(DecryptionFailed) as caught:
                decrypt_field(data_key, flipped(ciphertext, position, mask), context=EMAIL_CONTEXT)
            assert caught.value.code == "decryption_failed"
    for length in range(len(ciphertext)):
        with pytest.raises(DecryptionFailed):
            decrypt_field(data_key, ciphertext[:length], context=EMAIL_CONTEXT)
    with pytest.raises(DecryptionFailed):
        decrypt_field(data_key, ciphertext + b"\x00", context=EMAIL_CONTEXT)


def test_a_field_ciphertext_opens_only_with_its_key_and_context() -> None:
    data_key = new_data_key()
    ciphertext = encrypt_field(data_key, "ann@example.org", context=EMAIL_CONTEXT)
    for context in (f"{SUBJECT}:paypal_receiver", f"{OTHER_SUBJECT}:email", f"{SUBJECT}:emai"):
        with pytest.raises(DecryptionFailed, match="does not open"):
            decrypt_field(data_key, ciphertext, context=context)
    with pytest.raises(DecryptionFailed):
        decrypt_field(new_data_key(), ciphertext, context=EMAIL_CONTEXT)


def test_a_sealed_field_that_is_not_utf8_is_refused_not_garbled() -> None:
    data_key, nonce = new_data_key(), bytes(12)
    associated = frame(b"parrain/field", b"\x01", EMAIL_CONTEXT)
    sealed = AESGCM(data_key).encrypt(nonce, b"ann\xff", associated)
    with pytest.raises(DecryptionFailed, match="does not hold UTF-8 text"):
        decrypt_field(data_key, b"\x01" + nonce + sealed, context=EMAIL_CONTEXT)


def test_field_encryption_refuses_bad_keys_contexts_and_text() -> None:
    with pytest.raises(InvalidKeyMaterial, match="32 bytes"):
        encrypt_field(b"\x00" * 16, "x", context=EMAIL_CONTEXT)
    with pytest.raises(InvalidKeyMaterial):
        decrypt_field(b"\x00" * 33, b"\x01" * 40, context=EMAIL_CONTEXT)
    with pytest.raises(ValueError, match="context must be non-empty"):
        encrypt_field(new_data_key(), "x", context="")
    with pytest.raises(InvalidInput, match="lone surrogate"):
        encrypt_field(new_data_key(), "ann\ud800", context=EMAIL_CONTEXT)


# Wrapping data keys -------------------------------------------------------------------------


@given(data_key=st.binary(min_size=32, max_size=32), subject=st.text(min_size=1))
def test_any_data_key_round_trips_through_wrapping(data_key: bytes, subject: str) -> None:
    keyring = keyring_a()
    wrapped = wrap_data_key(keyring, data_key, subject=subject)
    assert wrapped.kid == "a"
    assert unwrap_data_key(keyring, wrapped, subject=subject) == data_key
    stored = WrappedKey.from_bytes(wrapped.to_bytes())
    assert stored == wrapped
    assert unwrap_data_key(keyring, stored, subject=subject) == data_key


def test_new_data_keys_are_random_256_bit_keys() -> None:
    keys = {new_data_key() for _ in range(100)}
    assert len(keys) == 100
    assert {len(key) for key in keys} == {32}


def test_a_wrapped_key_layout_and_fresh_nonces() -> None:
    data_key = new_data_key()
    first = wrap_data_key(keyring_a(), data_key, subject=SUBJECT)
    second = wrap_data_key(keyring_a(), data_key, subject=SUBJECT)
    assert first.nonce != second.nonce
    assert first.sealed != second.sealed
    blob = first.to_bytes()
    assert blob[:3] == b"\x01\x01a"  # version 1, a one-character kid, "a"
    assert len(blob) == 3 + 12 + 32 + 16
    assert data_key not in blob


def test_flipping_any_bit_of_a_wrapped_key_fails_to_unwrap() -> None:
    keyring = keyring_ab("a")
    blob = wrap_data_key(keyring, new_data_key(), subject=SUBJECT).to_bytes()
    for position in range(len(blob)):
        for mask in (0x01, 0x03, 0x80):
            with pytest.raises(DecryptionFailed):
                unwrap_data_key(
                    keyring, WrappedKey.from_bytes(flipped(blob, position, mask)), subject=SUBJECT
                )
    for length in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            WrappedKey.from_bytes(blob[:length])


def test_a_wrapped_key_moved_to_another_person_does_not_unwrap() -> None:
    wrapped = wrap_data_key(keyring_a(), new_data_key(), subject=SUBJECT)
    with pytest.raises(DecryptionFailed, match="does not open"):
        unwrap_data_key(keyring_a(), wrapped, subject=OTHER_SUBJECT)
    wrong_master = MasterKeyring(keys=(MasterKey("a", KEY_B),), current_kid="a")
    with pytest.raises(DecryptionFailed):
        unwrap_data_key(wrong_master, wrapped, subject=SUBJECT)
    with pytest.raises(ValueError, match="subject must be non-empty"):
        wrap_data_key(keyring_a(), new_data_key(), subject="")
    with pytest.raises(InvalidKeyMaterial):
        wrap_data_key(keyring_a(), b"short", subject=SUBJECT)


def test_rotation_rewraps_under_the_current_key_and_retires_the_old_one() -> None:
    data_key = new_data_key()
    email = encrypt_field(data_key, "ann@example.org", context=EMAIL_CONTEXT)
    under_a = wrap_data_key(keyring_a(), data_key, subject=SUBJECT)
    assert under_a.kid == "a"

    rotated = keyring_ab("b")
    assert unwrap_data_key(rotated, under_a, subject=SUBJECT) == data_key
    under_b = rewrap_data_key(rotated, under_a, subject=SUBJECT)
    assert under_b.kid == "b"
    assert rewrap_data_key(rotated, under_b, subject=SUBJECT) is under_b  # already current

    retired = keyring_b()
    assert unwrap_data_key(retired, under_b, subject=SUBJECT) == data_key
    assert decrypt_field(data_key, email, context=EMAIL_CONTEXT) == "ann@example.org"
    with pytest.raises(UnknownKeyId) as caught:
        unwrap_data_key(retired, under_a, subject=SUBJECT)
    assert caught.value.code == "unknown_key_id"
    assert "unknown key id 'a'" in caught.value.message
    assert caught.value.details == {"kid": "a", "known": ["b"]}
    assert isinstance(caught.value, DecryptionFailed)
    with pytest.raises(UnknownKeyId):
        rewrap_data_key(retired, under_a, subject=SUBJECT)


def test_rewrap_checks_the_key_opens_before_moving_it() -> None:
    under_a = wrap_data_key(keyring_a(), new_data_key(), subject=SUBJECT)
    with pytest.raises(DecryptionFailed):
        rewrap_data_key(keyring_ab("b"), under_a, subject=OTHER_SUBJECT)


def test_crypto_shredding_leaves_nothing_that_opens_the_ciphertext() -> None:
    keyring = keyring_ab("b")
    ann_key, bob_key = new_data_key(), new_data_key()
    ann_wrapped = wrap_data_key(keyring, ann_key, subject=SUBJECT)
    bob_wrapped = wrap_data_key(keyring, bob_key, subject=OTHER_SUBJECT)
    ann_email = encrypt_field(ann_key, "ann@example.org", context=EMAIL_CONTEXT)
    bob_email = encrypt_field(bob_key, "bob@example.org", context=f"{OTHER_SUBJECT}:email")

    del ann_key, ann_wrapped  # erasure: Ann's wrapped data key is deleted

    candidates = [key.secret for key in keyring.keys]
    candidates += [key.secret for key in development_keyring().keys]
    candidates += [LOOKUP.secret, development_lookup_key().secret]
    candidates.append(unwrap_data_key(keyring, bob_wrapped, subject=OTHER_SUBJECT))
    for candidate in candidates:
        with pytest.raises(DecryptionFailed):
            decrypt_field(candidate, ann_email, context=EMAIL_CONTEXT)
    with pytest.raises(DecryptionFailed):  # Bob's wrapped key cannot stand in for Ann's
        unwrap_data_key(keyring, bob_wrapped, subject=SUBJECT)
    bob_again = unwrap_data_key(keyring, bob_wrapped, subject=OTHER_SUBJECT)
    assert decrypt_field(bob_again, bob_email, context=f"{OTHER_SUBJECT}:email") == (
        "bob@example.org"
    )


# Keyrings and key material ------------------------------------------------------------------


def test_a_keyring_parses_kid_and_base64_entries() -> None:
    keyring = MasterKeyring.parse(f"a:{b64(KEY_A)},b:{b64(KEY_B)}", current_kid="b")
    assert keyring.kids == ("a", "b")
    assert keyring.current == MasterKey("b", KEY_B)
    assert keyring.key_for("a").secret == KEY_A
    assert keyring.development is False
    from_lines = MasterKeyring.parse(f"\n a:{b64(KEY_A)}\n\nb:{b64(KEY_B)}\n", current_kid="a")
    assert from_lines.kids == ("a", "b")
    assert from_lines.current_kid == "a"
    assert MasterKeyring.parse(f"k-2026.01:{b64(KEY_A)}").current_kid == "k-2026.01"


SHORT = b64(bytes(range(31)))
LONG = b64(bytes(range(33)))
GOOD = b64(KEY_A)


@pytest.mark.parametrize(
    ("text", "current_kid", "expected"),
    [
        (f"a:{SHORT}", None, "must decode to 32 bytes (256 bits), not 31"),
        (f"a:{LONG}", "a", "must decode to 32 bytes (256 bits), not 33"),
        (f"a:{GOOD[:-2]}!=", "a", "master key 'a' (entry 1) is not valid base64"),
        (f"a:{GOOD},b:{GOOD[1:]}", "a", "master key 'b' (entry 2) is not valid base64"),
        (GOOD, None, "master key entry 1 is not 'kid:base64key'"),
        (f"{GOOD}:{GOOD}", None, "master key entry 1 is not 'kid:base64key'"),
        (f"a:{GOOD},a:{b64(KEY_B)}", "a", "master key id 'a' appears twice"),
        (f"a:{GOOD}", "z", "the current key id 'z' is not among the master keys (a)"),
        (f"a:{GOOD},b:{b64(KEY_B)}", None, "several master keys are given"),
        (" , \n", None, "no master key is given"),
    ],
)
def test_bad_key_material_is_refused_without_echoing_it(
    text: str, current_kid: str | None, expected: str
) -> None:
    with pytest.raises(InvalidKeyMaterial) as caught:
        MasterKeyring.parse(text, current_kid=current_kid)
    error = caught.value
    assert error.code == "invalid_key_material"
    assert expected in error.message
    shown = f"{error} {error!r} {error.to_dict()}"
    for secret in (GOOD, GOOD[1:20], SHORT[:20], LONG[:20], b64(KEY_B)[:20], KEY_A.hex()[:16]):
        assert secret not in shown
    # nothing chained either: a decoder's own exception could quote the text
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_key_objects_never_show_their_secret() -> None:
    keyring = keyring_ab("a")
    lookup = LookupKey.parse(b64(KEY_B))
    shown = f"{keyring!r} {keyring} {lookup!r} {development_keyring()!r}"
    assert "kid='a'" in shown
    for secret in (KEY_A, KEY_B):
        assert repr(secret)[2:20] not in shown
        assert b64(secret)[:12] not in shown
    assert "secret" not in shown


def test_master_keys_must_be_256_bits_with_a_short_plain_kid() -> None:
    with pytest.raises(InvalidKeyMaterial, match="must be 32 bytes"):
        MasterKey("a", KEY_A[:16])
    with pytest.raises(InvalidKeyMaterial, match="a key id is 1 to 32"):
        MasterKey("has space", KEY_A)
    with pytest.raises(InvalidKeyMaterial, match="a key id is 1 to 32"):
        MasterKey("k" * 33, KEY_A)
    with pytest.raises(InvalidKeyMaterial, match="at least one key"):
        MasterKeyring(keys=(), current_kid="a")
    with pytest.raises(InvalidKeyMaterial, match="lookup key must be 32 bytes"):
        LookupKey(KEY_A[:31])
    with pytest.raises(InvalidKeyMaterial, match="lookup key must decode to 32 bytes"):
        LookupKey.parse(SHORT)
    with pytest.raises(InvalidKeyMaterial, match="no lookup key"):
        LookupKey.parse("  ")


def test_development_keys_are_fixed_marked_and_distinct() -> None:
    keyring = development_keyring()
    assert keyring == development_keyring()
    assert keyring.development is True
    assert keyring.kids == ("dev",)
    assert development_lookup_key() == development_lookup_key()
    assert development_lookup_key().development is True
    assert development_lookup_key().secret != keyring.current.secret
    wrapped = wrap_data_key(keyring, KEY_A, subject=SUBJECT)
    assert unwrap_data_key(development_keyring(), wrapped, subject=SUBJECT) == KEY_A


# Lookup hashes ------------------------------------------------------------------------------


def test_lookup_hashes_are_stable_fixed_length_hex() -> None:
    digest = lookup_hash(LOOKUP, "ann@example.org", purpose="member.email")
    # Pinned (checked against the standard library's hmac over the length-prefixed parts
    # "parrain/lookup", purpose, value): a stored hash must still find its row after any
    # refactoring.
    assert digest == "7546e6c7efd371599b5d3ff8555e63f65eac9e5186bd32eda57c454a3f377c4f"
    assert digest == lookup_hash(LOOKUP, "ann@example.org", purpose="member.email")
    assert len(digest) == LOOKUP_HASH_LENGTH == 64
    assert set(digest) <= set("0123456789abcdef")
    assert len(lookup_hash(LOOKUP, "", purpose="member.email")) == 64


def test_lookup_hashes_differ_by_value_purpose_and_key() -> None:
    base = lookup_hash(LOOKUP, "ann@example.org", purpose="member.email")
    others = {
        lookup_hash(LOOKUP, "ann@example.org", purpose="payout.paypal_receiver"),
        lookup_hash(LOOKUP, "bob@example.org", purpose="member.email"),
        lookup_hash(LookupKey(KEY_A), "ann@example.org", purpose="member.email"),
        lookup_hash(development_lookup_key(), "ann@example.org", purpose="member.email"),
        # purpose and value are framed, so shifting a character between them changes the hash
        lookup_hash(LOOKUP, "lann@example.org", purpose="member.emai"),
    }
    assert base not in others
    assert len(others) == 5
    with pytest.raises(ValueError, match="purpose must be non-empty"):
        lookup_hash(LOOKUP, "ann@example.org", purpose="")


def test_emails_are_normalised_before_hashing_but_aliases_stay_distinct() -> None:
    assert normalise_email("  Ann.Lee+Promo@Example.ORG \n") == "ann.lee+promo@example.org"
    assert normalise_email("Ze\u0301lie@exemple.fr") == "z\u00e9lie@exemple.fr"
    assert normalise_email("ann+1@example.org") != normalise_email("ann@example.org")

    def email_hash(text: str) -> str:
        return lookup_hash(LOOKUP, normalise_email(text), purpose="member.email")

    assert email_hash(" ANN@example.org") == email_hash("ann@EXAMPLE.org")
    assert normalise_identifier("  AnnLee\u0301 ") == "AnnLe\u00e9"


# Settings -----------------------------------------------------------------------------------

_CRYPTO_VARIABLES = (
    "MASTER_KEYS",
    "MASTER_KEYS_FILE",
    "CURRENT_KID",
    "LOOKUP_KEY",
    "LOOKUP_KEY_FILE",
    "ALLOW_DEVELOPMENT_KEYS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _CRYPTO_VARIABLES:
        monkeypatch.delenv(f"PARRAIN_CRYPTO_{name}", raising=False)
    return monkeypatch


def test_every_crypto_setting_is_described() -> None:
    missing = [name for name, f in CryptoSettings.model_fields.items() if not f.description]
    assert missing == []
    assert Settings.model_fields["crypto"].description


def test_keys_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS", f"a:{b64(KEY_A)},b:{b64(KEY_B)}")
    env.setenv("PARRAIN_CRYPTO_CURRENT_KID", "b")
    env.setenv("PARRAIN_CRYPTO_LOOKUP_KEY", b64(LOOKUP.secret))
    settings = Settings()
    keyring = settings.crypto.build_master_keyring()
    assert keyring == keyring_ab("b")
    assert settings.crypto.build_lookup_key() == LOOKUP
    assert b64(KEY_A) not in repr(settings)
    assert b64(LOOKUP.secret) not in repr(settings)


def test_keys_come_from_files(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    master_file = tmp_path / "master_keys"
    master_file.write_text(f"a:{b64(KEY_A)}\nb:{b64(KEY_B)}\n")
    lookup_file = tmp_path / "lookup_key"
    lookup_file.write_text(b64(LOOKUP.secret) + "\n")
    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS_FILE", str(master_file))
    env.setenv("PARRAIN_CRYPTO_CURRENT_KID", "a")
    env.setenv("PARRAIN_CRYPTO_LOOKUP_KEY_FILE", str(lookup_file))
    crypto = CryptoSettings()
    assert crypto.build_master_keyring() == keyring_ab("a")
    assert crypto.build_lookup_key() == LOOKUP


def test_a_key_in_both_the_variable_and_a_file_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "master_keys"
    key_file.write_text(f"a:{b64(KEY_A)}")
    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS", f"b:{b64(KEY_B)}")
    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS_FILE", str(key_file))
    with pytest.raises(InvalidKeyMaterial) as caught:
        CryptoSettings().build_master_keyring()
    assert caught.value.message == (
        "set PARRAIN_CRYPTO_MASTER_KEYS or PARRAIN_CRYPTO_MASTER_KEYS_FILE, not both"
    )


def test_unreadable_or_empty_key_files_are_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(InvalidKeyMaterial, match="cannot be read: No such file or directory"):
        CryptoSettings().build_master_keyring()
    (tmp_path / "empty").write_text("\n")
    env.setenv("PARRAIN_CRYPTO_LOOKUP_KEY_FILE", str(tmp_path / "empty"))
    with pytest.raises(InvalidKeyMaterial, match="is empty"):
        CryptoSettings().build_lookup_key()


def test_without_keys_only_an_explicit_development_setting_starts(
    env: pytest.MonkeyPatch,
) -> None:
    crypto = CryptoSettings()
    assert crypto.allow_development_keys is False
    with pytest.raises(KeysNotConfigured) as caught:
        crypto.build_master_keyring()
    assert caught.value.code == "keys_not_configured"
    assert "PARRAIN_CRYPTO_MASTER_KEYS" in caught.value.message
    with pytest.raises(KeysNotConfigured, match="no lookup key is configured"):
        crypto.build_lookup_key()

    env.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    allowed = CryptoSettings()
    assert allowed.build_master_keyring() == development_keyring()
    assert allowed.build_lookup_key() == development_lookup_key()

    env.setenv("PARRAIN_CRYPTO_MASTER_KEYS", f"a:{b64(KEY_A)}")  # real keys still win
    assert CryptoSettings().build_master_keyring() == keyring_a()
