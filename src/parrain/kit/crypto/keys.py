"""Master keys (which wrap each person's data key) and the lookup key (for keyed hashes).

Key material reaches this module as text or bytes; reading it from the environment or a file
is :mod:`parrain.config`'s job, and it never comes from the database. Every error message
here names an entry's position or key id at most, never key bytes or their base64 text, so a
misconfiguration can be logged and shown without leaking the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from parrain.kit.errors import InvalidKeyMaterial, UnknownKeyId

#: Every key here is 256 bits: AES-256-GCM keys and the HMAC-SHA256 lookup key alike.
KEY_BYTES = 32

_KID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# Entries may be separated by commas or whitespace (one per line in a file): neither can
# appear in a key id or in base64 text.
_ENTRY_SEPARATORS = re.compile(r"[,\s]+")

_DEVELOPMENT_KID = "dev"
_DEVELOPMENT_LABEL = b"parrain development key, public by construction, never for production: "


def _decode_key(text: str, *, what: str) -> bytes:
    """Decode standard base64 into exactly :data:`KEY_BYTES` bytes, or explain without echoing."""
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        # ``from None``: the decoder's own message is dropped so nothing of the text travels.
        raise InvalidKeyMaterial(f"{what} is not valid base64") from None
    if len(secret) != KEY_BYTES:
        raise InvalidKeyMaterial(
            f"{what} must decode to {KEY_BYTES} bytes (256 bits), not {len(secret)}",
            expected_bytes=KEY_BYTES,
            actual_bytes=len(secret),
        )
    return secret


@dataclass(frozen=True, slots=True)
class MasterKey:
    """One 256-bit master key and the short id recorded beside everything it wraps."""

    kid: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID_PATTERN.fullmatch(self.kid):
            raise InvalidKeyMaterial(
                "a key id is 1 to 32 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit"
            )
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise InvalidKeyMaterial(
                f"master key {self.kid!r} must be {KEY_BYTES} bytes (256 bits)", kid=self.kid
            )


@dataclass(frozen=True, slots=True)
class MasterKeyring:
    """The master keys this process holds; ``current_kid`` names the one new wraps use.

    Rotation: add a new key and make it current; data keys wrapped under older kids still
    unwrap (each wrapped key records its kid) until :func:`~parrain.kit.crypto.rewrap_data_key`
    has moved them all, and only then is the old key removed from the configuration.
    ``development`` marks the public keyring of :func:`development_keyring`.
    """

    keys: tuple[MasterKey, ...]
    current_kid: str
    development: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            raise InvalidKeyMaterial("a master keyring needs at least one key")
        seen: set[str] = set()
        for key in self.keys:
            if key.kid in seen:
                raise InvalidKeyMaterial(f"master key id {key.kid!r} appears twice", kid=key.kid)
            seen.add(key.kid)
        if self.current_kid not in seen:
            raise InvalidKeyMaterial(
                f"the current key id {self.current_kid!r} is not among the master keys "
                f"({', '.join(sorted(seen))})",
                kid=self.current_kid,
                known=sorted(seen),
            )

    @classmethod
    def parse(cls, text: str, *, current_kid: str | None = None) -> MasterKeyring:
        """Read ``"kid1:base64key,kid2:base64key"`` (commas or newlines between entries).

        ``current_kid`` may be left out only when there is a single key: with several, which
        one wraps new data keys is a decision an operator states, not one guessed from order.
        """
        entries = [entry for entry in _ENTRY_SEPARATORS.split(text) if entry]
        if not entries:
            raise InvalidKeyMaterial("no master key is given")
        keys: list[MasterKey] = []
        for position, entry in enumerate(entries, start=1):
            kid, colon, encoded = entry.partition(":")
            if not colon or not _KID_PATTERN.fullmatch(kid):
                # The entry may be a bare key, so it is described, never quoted.
                raise InvalidKeyMaterial(
                    f"master key entry {position} is not 'kid:base64key' with a key id of 1 to "
                    "32 letters, digits, '.', '_' or '-'",
                    entry=position,
                )
            secret = _decode_key(encoded, what=f"master key {kid!r} (entry {position})")
            keys.append(MasterKey(kid, secret))
        if current_kid is None:
            if len(keys) > 1:
                raise InvalidKeyMaterial(
                    "several master keys are given; name the current one "
                    "(PARRAIN_CRYPTO_CURRENT_KID)",
                    known=[key.kid for key in keys],
                )
            current_kid = keys[0].kid
        return cls(keys=tuple(keys), current_kid=current_kid)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(key.kid for key in self.keys)

    @property
    def current(self) -> MasterKey:
        return self.key_for(self.current_kid)

    def key_for(self, kid: str) -> MasterKey:
        """The master key named ``kid``; :class:`UnknownKeyId` if this keyring lacks it."""
        for key in self.keys:
            if key.kid == kid:
                return key
        raise UnknownKeyId(
            f"unknown key id {kid!r}: no configured master key has it (a retired key may "
            "still be needed to read data wrapped under it)",
            kid=kid,
            known=list(self.kids),
        )


@dataclass(frozen=True, slots=True)
class LookupKey:
    """The 256-bit HMAC key of keyed lookup hashes; separate from the master keys.

    It cannot be rotated like a master key: every stored lookup hash depends on it, so a new
    lookup key means recomputing all hashes from the decrypted values.
    """

    secret: bytes = field(repr=False)
    development: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise InvalidKeyMaterial(f"the lookup key must be {KEY_BYTES} bytes (256 bits)")

    @classmethod
    def parse(cls, text: str) -> LookupKey:
        """Read the lookup key from its base64 text."""
        if not text.strip():
            raise InvalidKeyMaterial("no lookup key is given")
        return cls(_decode_key(text, what="the lookup key"))


def _development_secret(purpose: str) -> bytes:
    return hashlib.sha256(_DEVELOPMENT_LABEL + purpose.encode()).digest()


def development_keyring() -> MasterKeyring:
    """A fixed master keyring for development, tests and ``parrain demo``. NOT FOR PRODUCTION.

    The key is derived from a label in this public source file, so anyone can compute it:
    it protects nothing. It exists so the demo runs with nothing to configure; production
    settings refuse it unless development keys are explicitly allowed.
    """
    secret = _development_secret("master")
    return MasterKeyring(
        keys=(MasterKey(_DEVELOPMENT_KID, secret),), current_kid=_DEVELOPMENT_KID, development=True
    )


def development_lookup_key() -> LookupKey:
    """A fixed lookup key for development, tests and ``parrain demo``. NOT FOR PRODUCTION.

    Public by construction, like :func:`development_keyring`.
    """
    return LookupKey(_development_secret("lookup"), development=True)
