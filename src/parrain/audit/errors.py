"""Audit errors."""

from __future__ import annotations

from parrain.errors import InvalidInput


class InvalidAuditEntry(InvalidInput):
    code = "invalid_audit_entry"
