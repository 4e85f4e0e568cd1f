"""Privacy rights: everything held about a person (export) and crypto-shredding (erasure).

The ledger, prizes and audit entries keep their pseudonymous rows after an erasure, so the
books still balance; the person's personal data can no longer be read or matched (ADR 14).
"""
