"""The errors of receipt verification: :class:`InvalidReceipt` and one subclass, with its own
stable code, per way a receipt can fail to verify."""

from __future__ import annotations

from parrain.errors import InvalidInput


class InvalidReceipt(InvalidInput):
    """A receipt that does not verify. Each subclass has its own stable code; the message says
    what is wrong without a stack trace, and nothing from an unverified part is trusted."""

    code = "receipt_invalid"


class ReceiptMalformed(InvalidReceipt):
    """Not a receipt: not JSON or not a compact JWS, bad base64url, truncated, a header or
    claims of the wrong shape, or claims that are not what parrain writes."""

    code = "receipt_malformed"


class ReceiptAlgorithmRefused(InvalidReceipt):
    """The JWS header names an algorithm other than EdDSA (``none`` included)."""

    code = "receipt_algorithm_refused"


class ReceiptKeyUnknown(InvalidReceipt):
    """The JWS names a key id that is not among the public keys the verifier trusts."""

    code = "receipt_key_unknown"


class ReceiptSignatureInvalid(InvalidReceipt):
    """The signature does not match: the header or claims were altered after signing."""

    code = "receipt_signature_invalid"


class ReceiptClaimsMismatch(InvalidReceipt):
    """The readable claims beside the JWS differ from the signed ones: the file was edited."""

    code = "receipt_claims_mismatch"


class ReceiptUnreadable(InvalidReceipt):
    """The receipt file cannot be read at all (missing, a directory, no permission)."""

    code = "receipt_unreadable"
