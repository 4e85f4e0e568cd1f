"""Consent's business operations. Nothing here commits.

- :mod:`.declarations`: data-use declarations (versioned), their notices, the policy and
  the launch gate's ``consent_declaration`` check (registered when this package is imported);
- :mod:`.events`: a notice shown, grants, refusals, withdrawals (receipts, takedown
  messages) and expiry;
- :mod:`.state`: the member's current state (with the renewal prompt) and history;
- :mod:`.checks`: the consent check, one or a batch at a time, and its cache (ADR 25).
"""

from parrain.consent.service.checks import (
    Decision,
    check,
    check_cache,
    check_many,
    configure_check_cache,
    prune_changes,
)
from parrain.consent.service.declarations import (
    GATE_CHECK,
    PROGRAMME_DISPLAY_DAYS,
    PROGRAMME_PAYMENT_DAYS,
    check_policy,
    configured_limits,
    declare,
    declare_programme_defaults,
    find_declaration,
    get_declaration,
    get_notice,
    latest_version,
    limits_from,
    list_declarations,
    programme_declaration,
)
from parrain.consent.service.events import (
    EXPIRY_METHOD,
    TOPIC_EXPIRED,
    TOPIC_WITHDRAWN,
    ReceiptIssuer,
    event_read,
    expire_due,
    grant,
    receipt_file,
    refuse,
    show_notice,
    withdraw,
)
from parrain.consent.service.state import RENEWAL_DAYS, history, member_consents

__all__ = [
    "EXPIRY_METHOD",
    "GATE_CHECK",
    "PROGRAMME_DISPLAY_DAYS",
    "PROGRAMME_PAYMENT_DAYS",
    "RENEWAL_DAYS",
    "TOPIC_EXPIRED",
    "TOPIC_WITHDRAWN",
    "Decision",
    "ReceiptIssuer",
    "check",
    "check_cache",
    "check_many",
    "check_policy",
    "configure_check_cache",
    "configured_limits",
    "declare",
    "declare_programme_defaults",
    "event_read",
    "expire_due",
    "find_declaration",
    "get_declaration",
    "get_notice",
    "grant",
    "history",
    "latest_version",
    "limits_from",
    "list_declarations",
    "member_consents",
    "programme_declaration",
    "prune_changes",
    "receipt_file",
    "refuse",
    "show_notice",
    "withdraw",
]
