from __future__ import annotations

import pytest

from parrain.operators.roles import (
    PERMISSIONS,
    Permission,
    Role,
    allows,
    parse_role,
    permissions_of,
)


def test_every_permission_has_an_entry_and_admins_hold_them_all() -> None:
    assert set(PERMISSIONS) == set(Permission)
    assert permissions_of(Role.ADMIN) == frozenset(Permission)


def test_the_roles_of_the_issue() -> None:
    assert all(allows(role, Permission.CAMPAIGNS_VIEW) for role in Role)
    lifecycle = {role for role in Role if allows(role, Permission.CAMPAIGNS_LIFECYCLE)}
    assert lifecycle == {Role.ADMIN, Role.MARKETER}
    payouts = {role for role in Role if allows(role, Permission.PAYOUTS_VIEW)}
    assert payouts == {Role.FINANCE, Role.ADMIN, Role.AUDITOR}
    assert {role for role in Role if allows(role, Permission.AUDIT_VIEW)} == {
        Role.AUDITOR,
        Role.ADMIN,
    }
    assert {role for role in Role if allows(role, Permission.OPERATORS_MANAGE)} == {Role.ADMIN}
    assert {role for role in Role if allows(role, Permission.APIKEYS_MANAGE)} == {Role.ADMIN}


def test_the_auditor_only_reads() -> None:
    assert permissions_of(Role.AUDITOR) == {
        Permission.CAMPAIGNS_VIEW,
        Permission.PAYOUTS_VIEW,
        Permission.AUDIT_VIEW,
    }


def test_unknown_names_hold_nothing() -> None:
    assert not allows("superuser", Permission.CAMPAIGNS_VIEW)
    assert not allows(Role.ADMIN, "campaigns.delete")


def test_parse_role_ignores_case_and_names_the_roles_when_unknown() -> None:
    assert parse_role(" Finance ") is Role.FINANCE
    with pytest.raises(ValueError, match="the roles are admin, marketer, reviewer, finance"):
        parse_role("owner")
