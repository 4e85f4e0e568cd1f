"""Campaigns: the rules of a referral programme in one market, its prize budget in the
ledger, and its lifecycle ``draft → live ⇄ paused → ended`` behind a launch gate."""
