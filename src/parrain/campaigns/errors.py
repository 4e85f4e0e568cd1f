"""Campaign errors, each with a stable code."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class CampaignNameTaken(Conflict):
    code = "campaign_name_taken"


class InvalidCampaign(InvalidInput):
    code = "invalid_campaign"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class CampaignNotEditable(Conflict):
    code = "campaign_not_editable"


class LaunchGateFailed(Conflict):
    """One or more launch checks failed; ``details["findings"]`` lists them."""

    code = "launch_gate_failed"


class CampaignNotAcceptingCredit(Conflict):
    """The campaign is not live: no new enrolment or credit (what was earned is honoured)."""

    code = "campaign_not_live"


class CampaignEnded(Conflict):
    code = "campaign_ended"


class InsufficientBudget(Conflict):
    """The prize budget, counting pending holds, cannot cover this."""

    code = "insufficient_budget"
