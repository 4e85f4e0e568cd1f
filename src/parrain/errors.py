"""The one error base of parrain.

Every error a caller can cause derives from :class:`ParrainError`. It carries a stable
machine-readable ``code`` (clients rely on it; never rename one), the HTTP status the web
edge answers with, a human message, and optional structured ``details``. The CLI prints the
message and exits with status 2. Anything else that escapes is a bug and becomes a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ParrainError(Exception):
    """Base of every expected error: stable code, HTTP status, message, details."""

    code: ClassVar[str] = "error"
    status_code: ClassVar[int] = 400

    def __init__(self, message: str, /, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, Any] = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


class InvalidInput(ParrainError):
    """The request is malformed: a value is out of range or of the wrong kind."""

    code = "invalid_input"
    status_code = 422


class NotFound(ParrainError):
    code = "not_found"
    status_code = 404


class Conflict(ParrainError):
    code = "conflict"
    status_code = 409
