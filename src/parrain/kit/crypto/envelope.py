"""Envelope encryption: one data key per person, wrapped by a master key; fields under it.

Each person gets a random 256-bit data key. It is stored only wrapped (AES-256-GCM under the
current master key, with the person's pseudonymous id as associated data), and each personal
field is encrypted under it with AES-256-GCM, the field's context (``member:<id>:email``)
as associated data. Erasure is crypto-shredding: delete the wrapped data key and every
ciphertext of that person is unreadable, while the financial records that reference the
person's pseudonymous id stay intact.

Associated data binds a ciphertext to where it belongs: a wrapped key copied to another
person, or an email ciphertext copied into another member's row or into the PayPal column,
fails to open instead of decrypting to someone else's data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from parrain.errors import InvalidInput
from parrain.kit.crypto._framing import frame, require_label
from parrain.kit.crypto.keys import KEY_BYTES, MasterKeyring
from parrain.kit.errors import DecryptionFailed, InvalidKeyMaterial

#: Format version of :class:`WrappedKey`, bound into its associated data.
WRAPPED_KEY_VERSION = 1
#: First byte of every field ciphertext from :func:`encrypt_field`.
FIELD_VERSION = 1
#: 96-bit random nonces: with a fresh data key per person, each key sees few encryptions,
#: far below the ~2^32 where random GCM nonces start to risk a repeat.
NONCE_BYTES = 12
TAG_BYTES = 16

_WRAP_LABEL = b"parrain/data-key"
_FIELD_LABEL = b"parrain/field"
_FIELD_HEADER = 1 + NONCE_BYTES


def _require_data_key(data_key: object) -> bytes:
    if not isinstance(data_key, bytes) or len(data_key) != KEY_BYTES:
        raise InvalidKeyMaterial(f"a data key is {KEY_BYTES} bytes (256 bits)")
    return data_key


def _open(key: bytes, nonce: bytes, sealed: bytes, associated_data: bytes, *, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, sealed, associated_data)
    except InvalidTag:
        raise DecryptionFailed(
            f"{what} does not open: it was altered, or the key, subject or context is not the "
            "one it was sealed with"
        ) from None


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one person."""
    return secrets.token_bytes(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key sealed under master key ``kid``: what is stored for each person.

    ``kid`` is kept readable so a rotation sweep can find keys not yet under the current
    master key. :meth:`to_bytes` gives one compact blob for a single column.
    """

    kid: str
    nonce: bytes
    sealed: bytes
    version: int = WRAPPED_KEY_VERSION

    def __post_init__(self) -> None:
        if self.version != WRAPPED_KEY_VERSION:
            raise DecryptionFailed(
                f"wrapped key format version {self.version} is not supported",
                version=self.version,
            )
        if len(self.nonce) != NONCE_BYTES or len(self.sealed) != KEY_BYTES + TAG_BYTES:
            raise DecryptionFailed("the wrapped key is malformed: wrong nonce or key length")

    def to_bytes(self) -> bytes:
        """``version ‖ len(kid) ‖ kid ‖ nonce ‖ sealed key and tag``."""
        kid = self.kid.encode("ascii")
        return bytes([self.version, len(kid)]) + kid + self.nonce + self.sealed

    @classmethod
    def from_bytes(cls, blob: bytes) -> WrappedKey:
        """Read :meth:`to_bytes` output; anything malformed is :class:`DecryptionFailed`."""
        if len(blob) < 2:
            raise DecryptionFailed("the wrapped key is malformed: too short")
        version, kid_length = blob[0], blob[1]
        body = blob[2 + kid_length :]
        if len(body) != NONCE_BYTES + KEY_BYTES + TAG_BYTES:
            raise DecryptionFailed("the wrapped key is malformed: wrong length")
        try:
            kid = blob[2 : 2 + kid_length].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionFailed(
                "the wrapped key is malformed: its key id is not ASCII"
            ) from None
        return cls(kid=kid, nonce=body[:NONCE_BYTES], sealed=body[NONCE_BYTES:], version=version)


def _wrap_associated_data(*, version: int, kid: str, subject: str) -> bytes:
    return frame(_WRAP_LABEL, bytes([version]), kid, subject)


def wrap_data_key(keyring: MasterKeyring, data_key: bytes, *, subject: str) -> WrappedKey:
    """Seal ``data_key`` under the keyring's current master key, bound to ``subject``.

    ``subject`` is the owner's pseudonymous id (a member id): the wrapped key opens only for
    that subject, so it cannot be moved to another person.
    """
    require_label(subject, name="subject")
    master = keyring.current
    nonce = secrets.token_bytes(NONCE_BYTES)
    associated = _wrap_associated_data(version=WRAPPED_KEY_VERSION, kid=master.kid, subject=subject)
    sealed = AESGCM(master.secret).encrypt(nonce, _require_data_key(data_key), associated)
    return WrappedKey(kid=master.kid, nonce=nonce, sealed=sealed)


def unwrap_data_key(keyring: MasterKeyring, wrapped: WrappedKey, *, subject: str) -> bytes:
    """The data key inside ``wrapped``, opened with the master key its ``kid`` names.

    :class:`~parrain.kit.errors.UnknownKeyId` if that master key is no longer configured;
    :class:`~parrain.kit.errors.DecryptionFailed` if it was altered or belongs to another
    subject.
    """
    require_label(subject, name="subject")
    master = keyring.key_for(wrapped.kid)
    associated = _wrap_associated_data(version=wrapped.version, kid=wrapped.kid, subject=subject)
    return _open(
        master.secret, wrapped.nonce, wrapped.sealed, associated, what="the wrapped data key"
    )


def rewrap_data_key(keyring: MasterKeyring, wrapped: WrappedKey, *, subject: str) -> WrappedKey:
    """``wrapped`` under the current master key, for rotation; field ciphertexts are untouched.

    Always opens ``wrapped`` first, so a damaged key is found now rather than after the old
    master key is gone. Already under the current key: returned unchanged.
    """
    data_key = unwrap_data_key(keyring, wrapped, subject=subject)
    if wrapped.kid == keyring.current_kid:
        return wrapped
    return wrap_data_key(keyring, data_key, subject=subject)


def _field_associated_data(*, version: int, context: str) -> bytes:
    return frame(_FIELD_LABEL, bytes([version]), context)


def encrypt_field(data_key: bytes, plaintext: str, *, context: str) -> bytes:
    """``FIELD_VERSION ‖ nonce ‖ AES-GCM(plaintext, tag)``, bound to ``context``.

    ``context`` names the field and its owner (``member:<id>:email``); a fresh random nonce
    per call means the same text never gives the same bytes twice.
    """
    require_label(context, name="context")
    try:
        encoded = plaintext.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("the text is not valid Unicode (it holds a lone surrogate)") from None
    nonce = secrets.token_bytes(NONCE_BYTES)
    associated = _field_associated_data(version=FIELD_VERSION, context=context)
    sealed = AESGCM(_require_data_key(data_key)).encrypt(nonce, encoded, associated)
    return bytes([FIELD_VERSION]) + nonce + sealed


def decrypt_field(data_key: bytes, ciphertext: bytes, *, context: str) -> str:
    """The text :func:`encrypt_field` sealed; :class:`DecryptionFailed`, never garbage."""
    require_label(context, name="context")
    key = _require_data_key(data_key)
    if len(ciphertext) < _FIELD_HEADER + TAG_BYTES:
        raise DecryptionFailed("the field ciphertext is malformed: too short")
    version = ciphertext[0]
    if version != FIELD_VERSION:
        raise DecryptionFailed(
            f"field ciphertext format version {version} is not supported", version=version
        )
    associated = _field_associated_data(version=version, context=context)
    opened = _open(
        key,
        ciphertext[1:_FIELD_HEADER],
        ciphertext[_FIELD_HEADER:],
        associated,
        what="the field ciphertext",
    )
    try:
        return opened.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionFailed("the field ciphertext does not hold UTF-8 text") from None
