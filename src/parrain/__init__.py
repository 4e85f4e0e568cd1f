"""parrain: referral cash-rewards campaigns with consent you can prove."""

__version__ = "0.1.0"
