"""One module of commands per domain: db, campaign, ledger, audit, and demo (with serve)."""
