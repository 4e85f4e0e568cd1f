"""Ed25519 signing keys: what signs consent receipts, and the public keys that check them.

A signing key is read from settings-like text, either its raw 32-byte seed in base64url
(RFC 4648 §5, padding optional) or an unencrypted PKCS#8 PEM (``openssl genpkey -algorithm
ed25519``). Its key id (``kid``) is derived from the public key, the first 16 hex characters
of the SHA-256 of the raw 32-byte public key, so a kid cannot name two keys, needs no
configuration, and anyone holding the public key can recompute it.

Verification needs only public keys: :func:`load_verification_keys` reads them (raw base64url
or PEM) into a ``{kid: key}`` map. A key that signed receipts stays in that map after a
rotation, for as long as its receipts must be checked.

Like :mod:`.keys`, errors name a position at most, never key text, and the development key
is derived from a label in this public file: it signs nothing anyone should trust.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from parrain.kit.errors import InvalidKeyMaterial

#: An Ed25519 private key is a 32-byte seed (RFC 8032 §5.1.5); its public key is 32 bytes too.
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
#: Length of a key id: 16 hex characters (64 bits) of SHA-256 of the raw public key. Enough
#: to tell a handful of keys apart; the signature, not the kid, is what proves anything.
KID_LENGTH = 16

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_ENTRY_SEPARATORS = re.compile(r"[,\s]+")
_DEVELOPMENT_LABEL = (
    b"parrain development signing key, public by construction, never for production"
)


def _decode_base64url(text: str, *, what: str, length: int) -> bytes:
    """``length`` bytes from base64url text (padding optional), or an error that never echoes it."""
    compact = text.strip()
    if not _BASE64URL.fullmatch(compact):
        raise InvalidKeyMaterial(
            f"{what} is neither a PEM block nor base64url text (A-Z, a-z, 0-9, '-' and '_')"
        )
    unpadded = compact.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidKeyMaterial(f"{what} is not valid base64url") from None
    if len(raw) != length:
        raise InvalidKeyMaterial(
            f"{what} must decode to {length} bytes, not {len(raw)}",
            expected_bytes=length,
            actual_bytes=len(raw),
        )
    return raw


def encode_base64url(raw: bytes) -> str:
    """Base64url without padding (RFC 7515 §2), as key text and JWS segments are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte encoding of ``public_key`` (RFC 8032)."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The kid of ``public_key``: the first 16 hex characters of SHA-256(raw public key).

    Derived rather than configured, so the kid in a receipt's header always names exactly
    one key and a verifier can check which key it was by hashing the published key.
    """
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:KID_LENGTH]


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    """``public_key`` as unpadded base64url of its raw bytes: what to publish for verifiers."""
    return encode_base64url(public_key_bytes(public_key))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key, held as its 32-byte seed.

    The seed, not a ``cryptography`` object, is the field so that two loads of one key compare
    equal. ``development`` marks the public key of :func:`development_signing_key`.
    """

    seed: bytes = field(repr=False)
    development: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise InvalidKeyMaterial(f"an Ed25519 signing key is a {SEED_BYTES}-byte seed")

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random signing key."""
        return cls(secrets.token_bytes(SEED_BYTES))

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """Read a signing key: base64url of the 32-byte seed, or an unencrypted PKCS#8 PEM.

        Only an Ed25519 key is accepted; an encrypted PEM is refused rather than prompting
        for a password, since a server cannot answer one.
        """
        stripped = text.strip()
        if not stripped:
            raise InvalidKeyMaterial("no signing key is given")
        if not stripped.startswith("-----BEGIN"):
            return cls(_decode_base64url(stripped, what="the signing key", length=SEED_BYTES))
        if "ENCRYPTED" in stripped.split("\n", 1)[0]:
            raise InvalidKeyMaterial(
                "the signing key PEM is encrypted: give it unencrypted (PKCS#8), and protect "
                "the file instead"
            )
        try:
            loaded = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise InvalidKeyMaterial(
                "the signing key PEM cannot be read: it must be an unencrypted PKCS#8 "
                "'PRIVATE KEY' block (openssl genpkey -algorithm ed25519)"
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise InvalidKeyMaterial(
                f"the signing key PEM holds a {type(loaded).__name__.removeprefix('_')} key, "
                "not an Ed25519 key"
            )
        return cls(loaded.private_bytes_raw())

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``: deterministic (RFC 8032), so the same
        message signed twice gives the same bytes."""
        return self.private_key.sign(message)

    def to_pem(self) -> str:
        """The key as an unencrypted PKCS#8 PEM, e.g. to write a new key to a secrets file."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Read a public key: base64url of its 32 raw bytes, or a PEM 'PUBLIC KEY' block."""
    stripped = text.strip()
    if not stripped:
        raise InvalidKeyMaterial("no public key is given")
    if not stripped.startswith("-----BEGIN"):
        raw = _decode_base64url(stripped, what="the public key", length=PUBLIC_KEY_BYTES)
        return Ed25519PublicKey.from_public_bytes(raw)
    try:
        loaded = serialization.load_pem_public_key(stripped.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise InvalidKeyMaterial(
            "the public key PEM cannot be read: it must be a 'PUBLIC KEY' block"
        ) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise InvalidKeyMaterial(
            f"the public key PEM holds a {type(loaded).__name__.removeprefix('_')} key, "
            "not an Ed25519 key"
        )
    return loaded


def verification_keys(
    *keys: Ed25519PublicKey | SigningKey,
) -> dict[str, Ed25519PublicKey]:
    """``{kid: public key}`` for ``keys``: the map a verifier is given.

    A signing key contributes its public key; the same key given twice appears once.
    """
    found: dict[str, Ed25519PublicKey] = {}
    for key in keys:
        public = key.public_key if isinstance(key, SigningKey) else key
        found[key_id(public)] = public
    return found


def load_verification_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """Read several public keys: PEM 'PUBLIC KEY' blocks and base64url keys separated by
    commas or whitespace, in any mix (a file of published keys, or one variable)."""
    keys: list[Ed25519PublicKey] = []
    position = 0
    for match in _PEM_BLOCK.finditer(text):
        position += 1
        try:
            keys.append(load_public_key(match.group(0)))
        except InvalidKeyMaterial as error:
            raise InvalidKeyMaterial(f"public key {position}: {error.message}") from None
    for entry in _ENTRY_SEPARATORS.split(_PEM_BLOCK.sub(" ", text)):
        if not entry:
            continue
        position += 1
        try:
            keys.append(load_public_key(entry))
        except InvalidKeyMaterial as error:
            raise InvalidKeyMaterial(f"public key {position}: {error.message}") from None
    if not keys:
        raise InvalidKeyMaterial("no public key is given")
    return verification_keys(*keys)


@functools.cache
def development_signing_key() -> SigningKey:
    """A fixed Ed25519 key for development, tests and ``parrain demo``. NOT FOR PRODUCTION.

    Its seed is SHA-256 of a label in this public source file, so anyone can compute it and
    sign anything with it: a receipt under its kid proves nothing. It exists so the demo runs
    with nothing to configure; a verifier that meets its kid says so.
    """
    return SigningKey(hashlib.sha256(_DEVELOPMENT_LABEL).digest(), development=True)


def is_development_key(kid: str) -> bool:
    """Whether ``kid`` names the public development key: what it signed proves nothing."""
    return kid == development_signing_key().kid
