"""Payout providers: PayPal's client and a local fake of PayPal's published API."""
