"""Prize coupons: issued when a held prize is posted, spent at the marketplace's checkout.

Each coupon is one prize part (the member's coupons, or a friend's welcome) and so one
ledger transfer out of the budget into the campaign's coupon liability. Redeeming it moves
its value from that liability to the marketplace's coupon redemptions (what the budget owes
the marketplace for the discount it gave); letting it expire moves it back to the budget.
Each of those happens at most once (transfer ids derived from the coupon's id).
"""
