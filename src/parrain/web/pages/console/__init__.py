"""The operator console: ``/console``, server-rendered, no JavaScript needed.

- :mod:`.session`: the session cookie, who is signed in, what their role allows, flash
  messages;
- :mod:`.sign_in`: signing in (CSRF-protected before any session exists) and out;
- :mod:`.campaigns`: the campaigns, each with its launch gate and lifecycle actions, and
  the form of a draft (:mod:`.campaign_form` reads it);
- :mod:`.audit`: the auditor's view (the chain, notices, consent records, the bundle);
- :mod:`.apikeys`: the integration API keys (created, shown once, revoked);
- :mod:`.payouts`: the payout batches, their items, and reconciliation with PayPal;
- :mod:`.events`: the marketplace's events received for later and set aside, retried.

Every page needs a session (without one it redirects to the sign-in page) and one
permission of :mod:`parrain.operators.roles` (without it, a 403 page). Every form carries
the session's CSRF token. See docs/adr/0020-operator-sign-in-and-roles.md.
"""

from fastapi import APIRouter

from parrain.web.pages.console import apikeys, audit, campaigns, events, payouts, sign_in

router = APIRouter(include_in_schema=False)
router.include_router(sign_in.router)
router.include_router(campaigns.router)
router.include_router(audit.router)
router.include_router(apikeys.router)
router.include_router(payouts.router)
router.include_router(events.router)

__all__ = ["router"]
