"""The roles of operators and what each may do. Pure: no database, no web.

The console's pages and actions each need one :class:`Permission`; :data:`PERMISSIONS`
says which roles hold it. The authorization tests read this same table, so a change here
changes both what the console allows and what the tests expect.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class Role(enum.StrEnum):
    """An operator's role. Stable: accounts are stored with these names."""

    ADMIN = "admin"  # everything, including accounts and API keys
    MARKETER = "marketer"  # the growth team: campaigns and their lifecycle
    REVIEWER = "reviewer"  # the fraud team: the queue of held conversions
    FINANCE = "finance"  # payout batches and their reconciliation
    AUDITOR = "auditor"  # privacy officer or regulator: reads, never changes


class Permission(enum.StrEnum):
    """Something the console lets an operator see or do."""

    CAMPAIGNS_VIEW = "campaigns.view"
    CAMPAIGNS_EDIT = "campaigns.edit"
    CAMPAIGNS_LIFECYCLE = "campaigns.lifecycle"  # launch, pause, resume, end
    FRAUD_REVIEW = "fraud.review"
    PAYOUTS_VIEW = "payouts.view"
    PAYOUTS_MANAGE = "payouts.manage"
    AUDIT_VIEW = "audit.view"
    APIKEYS_MANAGE = "apikeys.manage"
    OPERATORS_MANAGE = "operators.manage"
    EVENTS_MANAGE = "events.manage"  # the marketplace's events set aside after failing


_ALL: Final = frozenset(Role)

#: Which roles hold each permission.
PERMISSIONS: Final[Mapping[Permission, frozenset[Role]]] = {
    Permission.CAMPAIGNS_VIEW: _ALL,
    Permission.CAMPAIGNS_EDIT: frozenset({Role.ADMIN, Role.MARKETER}),
    Permission.CAMPAIGNS_LIFECYCLE: frozenset({Role.ADMIN, Role.MARKETER}),
    Permission.FRAUD_REVIEW: frozenset({Role.ADMIN, Role.REVIEWER}),
    Permission.PAYOUTS_VIEW: frozenset({Role.ADMIN, Role.FINANCE, Role.AUDITOR}),
    Permission.PAYOUTS_MANAGE: frozenset({Role.ADMIN, Role.FINANCE}),
    Permission.AUDIT_VIEW: frozenset({Role.ADMIN, Role.AUDITOR}),
    Permission.APIKEYS_MANAGE: frozenset({Role.ADMIN}),
    Permission.OPERATORS_MANAGE: frozenset({Role.ADMIN}),
    Permission.EVENTS_MANAGE: frozenset({Role.ADMIN}),
}


def allows(role: Role | str, permission: Permission | str) -> bool:
    """Whether an operator with ``role`` holds ``permission`` (unknown names hold nothing)."""
    try:
        return Role(role) in PERMISSIONS[Permission(permission)]
    except ValueError:
        return False


def permissions_of(role: Role | str) -> frozenset[Permission]:
    """Every permission ``role`` holds."""
    return frozenset(p for p, roles in PERMISSIONS.items() if Role(role) in roles)


def parse_role(text: str) -> Role:
    """The role named ``text`` (any case, surrounding spaces ignored), else ValueError."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        known = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {text.strip()[:40]!r}; the roles are {known}") from None
