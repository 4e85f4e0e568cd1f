"""API key errors, each with a stable code. Messages never quote a presented key."""

from __future__ import annotations

from parrain.errors import Conflict, NotFound, ParrainError


class InvalidApiKey(ParrainError):
    """No key, a malformed or unknown key, a wrong secret, or a revoked key (the message
    says which of the last it was only to a caller who holds the right secret)."""

    code = "invalid_api_key"
    status_code = 401


class ApiKeyScopeDenied(ParrainError):
    """A valid key that was not granted the scope this operation needs."""

    code = "api_key_scope_denied"
    status_code = 403


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class ApiKeyNameTaken(Conflict):
    code = "api_key_name_taken"
