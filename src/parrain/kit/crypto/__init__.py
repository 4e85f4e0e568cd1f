"""Personal-data cryptography: envelope encryption, keyed lookup hashes, master keyrings.

- :mod:`.keys`: the master keyring (rotation by key id) and the lookup key; development
  keys for the demo, never for production.
- :mod:`.envelope`: a data key per person wrapped by a master key (erasure deletes it),
  and field encryption under that data key.
- :mod:`.lookup`: HMAC lookup hashes and the normalisers applied before them.

Pure and database-free; key material comes in as text or bytes from :mod:`parrain.config`.
See docs/adr/0005-personal-data-encryption.md.
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

__all__ = [
    "FIELD_VERSION",
    "KEY_BYTES",
    "LOOKUP_HASH_LENGTH",
    "WRAPPED_KEY_VERSION",
    "LookupKey",
    "MasterKey",
    "MasterKeyring",
    "WrappedKey",
    "decrypt_field",
    "development_keyring",
    "development_lookup_key",
    "encrypt_field",
    "lookup_hash",
    "new_data_key",
    "normalise_email",
    "normalise_identifier",
    "rewrap_data_key",
    "unwrap_data_key",
    "wrap_data_key",
]
