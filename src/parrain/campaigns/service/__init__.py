"""Campaign operations: drafts, funding, the lifecycle and budget holds. Nothing commits.

Each campaign owns three ledger accounts in its currency:

* ``budget``: the prize fund, credited by funding and never debited past its credits
  (pending holds included), so a campaign can never overspend;
* ``cash_payable``: reward cash owed to members until it is paid out to PayPal;
* ``coupon_liability``: coupon value owed to members and friends until spent or expired.

Funding moves money from the operator's funding account of that currency into the budget.

The modules: :mod:`.common` (references, loading, reading), :mod:`.drafts`, :mod:`.funding`,
:mod:`.lifecycle` (with the launch gate's checks of campaigns) and :mod:`.prizes`. Callers
use the names below (``from parrain.campaigns import service as campaigns``).
"""

from __future__ import annotations

from parrain.campaigns.service.common import (
    budget_of,
    display_locale,
    funding_account_reference,
    to_read,
)
from parrain.campaigns.service.drafts import create, find_by_name, get, list_campaigns, update
from parrain.campaigns.service.funding import fund
from parrain.campaigns.service.lifecycle import TRANSITIONS, end, launch, pause, resume
from parrain.campaigns.service.prizes import (
    PrizePart,
    PrizePartKind,
    claw_back_prize_parts,
    hold_prize,
    hold_prizes,
    hold_reward,
    prize_cost,
    prize_part_transfer_ids,
    prize_parts,
    release_reward,
    settle_prize_parts,
    void_reward,
)

__all__ = [
    "TRANSITIONS",
    "PrizePart",
    "PrizePartKind",
    "budget_of",
    "claw_back_prize_parts",
    "create",
    "display_locale",
    "end",
    "find_by_name",
    "fund",
    "funding_account_reference",
    "get",
    "hold_prize",
    "hold_prizes",
    "hold_reward",
    "launch",
    "list_campaigns",
    "pause",
    "prize_cost",
    "prize_part_transfer_ids",
    "prize_parts",
    "release_reward",
    "resume",
    "settle_prize_parts",
    "to_read",
    "update",
    "void_reward",
]
