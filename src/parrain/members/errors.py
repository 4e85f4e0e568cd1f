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
