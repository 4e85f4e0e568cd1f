"""Cryptography: envelope encryption, keyed lookup hashes, master keyrings, Ed25519 signing.

- :mod:`.keys`: the master keyring (rotation by key id) and the lookup key; development
  keys for the demo, never for production.
- :mod:`.envelope`: a data key per person wrapped by a master key (erasure deletes it),
  and field encryption under that data key.
- :mod:`.lookup`: HMAC lookup hashes and the normalisers applied before them.
- :mod:`.signing`: Ed25519 signing keys (kid derived from the public key), the public keys
  that verify what they signed, and a development key for the demo, never for production.

Pure and database-free; key material comes in as text or bytes from :mod:`parrain.config`.
See docs/adr/0005-personal-data-encryption.md and docs/adr/0013-signed-consent-receipts.md.
"""

from parrain.kit.crypto.envelope import (
    FIELD_VERSION,
    WRAPPED_KEY_VERSION,
    WrappedKey,
    decrypt_field,
    encrypt_field,
    new_data_key,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from parrain.kit.crypto.keys import (
    KEY_BYTES,
    LookupKey,
    MasterKey,
    MasterKeyring,
    development_keyring,
    development_lookup_key,
)
from parrain.kit.crypto.lookup import (
    LOOKUP_HASH_LENGTH,
    lookup_hash,
    normalise_email,
    normalise_identifier,
)
from parrain.kit.crypto.signing import (
    KID_LENGTH,
    SigningKey,
    development_signing_key,
    encode_base64url,
    encode_public_key,
    is_development_key,
    key_id,
    load_public_key,
    load_verification_keys,
    verification_keys,
)

__all__ = [
    "FIELD_VERSION",
    "KEY_BYTES",
    "KID_LENGTH",
    "LOOKUP_HASH_LENGTH",
    "WRAPPED_KEY_VERSION",
    "LookupKey",
    "MasterKey",
    "MasterKeyring",
    "SigningKey",
    "WrappedKey",
    "decrypt_field",
    "development_keyring",
    "development_lookup_key",
    "development_signing_key",
    "encode_base64url",
    "encode_public_key",
    "encrypt_field",
    "is_development_key",
    "key_id",
    "load_public_key",
    "load_verification_keys",
    "lookup_hash",
    "new_data_key",
    "normalise_email",
    "normalise_identifier",
    "rewrap_data_key",
    "unwrap_data_key",
    "verification_keys",
    "wrap_data_key",
]
