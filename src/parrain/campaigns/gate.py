"""The launch gate: checks a campaign must pass to go live (and to resume).

Other domains register their checks here (consent: the data-use declaration passes the
policy; terms: no critical finding) without campaigns importing them. A check returns the
findings that block the launch; an empty list means it passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.kit.clock import Clock


@dataclass(frozen=True, slots=True)
class GateFinding:
    """Why a campaign may not launch: the check (``budget_funded``, ``consent.<code>``…),
    a sentence in English for logs, the API and the CLI, and the values the sentence names
    (amounts in minor units, currency…), so that a page can say it in its own language."""

    check: str
    message: str
    values: Mapping[str, str | int] = field(default_factory=dict)


LaunchCheck = Callable[[Session, Campaign, Clock], list[GateFinding]]

_checks: dict[str, LaunchCheck] = {}


def register_launch_check(name: str, check: LaunchCheck) -> None:
    """Add (or replace) the check called ``name``; checks run in registration order."""
    _checks[name] = check


def registered_checks() -> list[str]:
    return list(_checks)


def run_launch_gate(session: Session, campaign: Campaign, clock: Clock) -> list[GateFinding]:
    findings: list[GateFinding] = []
    for check in _checks.values():
        findings.extend(check(session, campaign, clock))
    return findings
