"""The command line: the Typer app in ``app.py``, one module per domain in ``commands/``.

Commands parse what people type (amounts as decimal text, campaigns by name or id), call the
services inside one transaction, and print with Rich. An expected error is one line on
stderr and exit status 2; only this package imports Typer.
"""
