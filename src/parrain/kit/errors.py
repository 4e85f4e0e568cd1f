"""Errors raised by the kit."""

from __future__ import annotations

from parrain.errors import InvalidInput, ParrainError


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class CurrencyMismatch(ParrainError):
    code = "currency_mismatch"
    status_code = 422


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class AmountOutOfRange(InvalidInput):
    code = "amount_out_of_range"


class InvalidKeyMaterial(ParrainError):
    """Configured key material is malformed: wrong length, bad base64, duplicate key id...

    A deployment fault, not the caller's, hence 500. The message names the entry and the key
    id at most; it never repeats key bytes or their base64 text.
    """

    code = "invalid_key_material"
    status_code = 500


class KeysNotConfigured(InvalidKeyMaterial):
    """Something needs a key and none is configured (development keys are not allowed)."""

    code = "keys_not_configured"


class DecryptionFailed(ParrainError):
    """A ciphertext or wrapped key does not open: tampered, truncated, wrong key or context.

    Raised instead of ever returning garbage. 500: data at rest failing to open is never the
    caller's fault.
    """

    code = "decryption_failed"
    status_code = 500


class UnknownKeyId(DecryptionFailed):
    """A wrapped key names a master key id the keyring no longer holds.

    A subclass of :class:`DecryptionFailed` so readers that only ask "can I read this?" need
    one ``except``; its own code tells an operator that a retired master key is still needed.
    """

    code = "unknown_key_id"
