"""The plain-English summary of a verified receipt: who agreed to or withdrew what, where,
until when, under which notice, and which key signed it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from babel import Locale

from parrain.consent.receipts.jws import VerifiedReceipt


def _joined(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _categories(keys: Sequence[str]) -> str:
    return f"{'categories' if len(keys) > 1 else 'category'} {_joined(list(keys))}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d at %H:%M:%S UTC")


def _country(code: str) -> str:
    name = Locale("en").territories.get(code)
    return f"{name} ({code})" if isinstance(name, str) else code


def _language(code: str) -> str:
    name = Locale("en").languages.get(code)
    return name if isinstance(name, str) else code


def summary(verified: VerifiedReceipt) -> str:
    """One plain-English paragraph: who (the pseudonym) agreed to or withdrew what, for which
    uses and data, where, until when, under which notice, and which key signed it."""
    receipt = verified.receipt
    controllers = _joined([controller.name for controller in receipt.controllers])
    uses = "; and ".join(
        f'data of {_categories(purpose.data_categories)} for "{purpose.purpose}" '
        f"({purpose.data_use})"
        for purpose in receipt.purposes
    )
    where = (
        f"on {_joined(list(receipt.channels))}, "
        f"in {_joined([_country(code) for code in receipt.territories])}"
    )
    if receipt.expires_at is not None:
        what = (
            f"On {_when(receipt.occurred_at)}, member {receipt.member_id} agreed that "
            f"{controllers} may use {uses}, {where}, until {_when(receipt.expires_at)} unless "
            "the member withdraws sooner."
        )
        how = "The consent was given"
    else:
        what = (
            f"On {_when(receipt.occurred_at)}, member {receipt.member_id} withdrew the consent "
            f"that let {controllers} use {uses}, {where}; from then on that data may not be "
            "used for these purposes."
        )
        how = "It was withdrawn"
    sentences = [
        what,
        f'{how} through "{receipt.collection_method}", in {_language(receipt.language)}, '
        f"under notice version {receipt.notice_version} (SHA-256 {receipt.notice_sha256}) of "
        f"campaign {receipt.campaign_id}, in the jurisdiction of {_country(receipt.jurisdiction)}.",
        f"Receipt {receipt.receipt_id}, signed with key {verified.kid}; the member is named only "
        "by a pseudonymous id.",
    ]
    if verified.development:
        sentences.append(
            "Warning: that key is parrain's public development key, which anyone can compute, "
            "so this receipt proves nothing."
        )
    return " ".join(sentences)
