"""Member errors, each with a stable code. Messages carry member ids, never personal data."""

from __future__ import annotations

from parrain.errors import ParrainError


class MemberNotFound(ParrainError):
    code = "member_not_found"
    status_code = 404


class MemberErased(ParrainError):
    """The member's data key was destroyed (crypto-shredding): the personal data is gone."""

    code = "member_erased"
    status_code = 410


class MemberTokenRefused(ParrainError):
    """A member token that does not let anyone in; the subclass says why. Messages never
    quote the token: it is a credential."""

    code = "member_token_refused"
    status_code = 401


class MemberTokenMalformed(MemberTokenRefused):
    """Not a compact HS256 token with the claims parrain needs (or far too long)."""

    code = "member_token_malformed"


class MemberTokenTampered(MemberTokenRefused):
    """The signature does not match: the token was changed, or signed with another secret."""

    code = "member_token_bad_signature"


class MemberTokenExpired(MemberTokenRefused):
    code = "member_token_expired"


class MemberTokenNotYetValid(MemberTokenRefused):
    """Issued (or valid from) a time still ahead, beyond the allowed clock skew."""

    code = "member_token_not_yet_valid"


class MemberTokenWrongAudience(MemberTokenRefused):
    """Signed for another audience than ``parrain-member``."""

    code = "member_token_wrong_audience"


class MemberTokenTooLongLived(MemberTokenRefused):
    """Its lifetime (``exp`` − ``iat``) is longer than parrain accepts."""

    code = "member_token_too_long_lived"
