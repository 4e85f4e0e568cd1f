"""Operator errors, each with a stable code. No message ever quotes a password."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound, ParrainError


class InvalidUsername(InvalidInput):
    code = "invalid_username"


class WeakPassword(InvalidInput):
    """Too short, too long, or containing the username."""

    code = "weak_password"


class UnknownRole(InvalidInput):
    code = "unknown_role"


class UsernameTaken(Conflict):
    """Another operator has this username, in any mix of upper and lower case."""

    code = "operator_username_taken"


class OperatorNotFound(NotFound):
    code = "operator_not_found"


class PermissionDenied(ParrainError):
    """The operator is signed in, but their role does not hold the permission needed."""

    code = "permission_denied"
    status_code = 403


class OperatorUnauthenticated(ParrainError):
    """No operator token, or one that is unknown, expired, idle or revoked (the API)."""

    code = "operator_unauthenticated"
    status_code = 401


class InvalidTokenLifetime(InvalidInput):
    code = "invalid_token_lifetime"
