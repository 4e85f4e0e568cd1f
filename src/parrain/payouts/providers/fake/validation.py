"""What the fake checks in a request, as PayPal does: a ``create_payout_request`` refused
whole with a ``details[]`` entry per bad field, and the paging parameters of a batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parrain.kit.errors import InvalidAmount, UnknownCurrency
from parrain.kit.money import Money, minor_unit_exponent
from parrain.payouts.providers.paypal_wire import (
    MAX_BATCH_ITEMS,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    RecipientType,
    parse_amount_text,
)


def detail(field_name: str, issue: str) -> dict[str, str]:
    return {"field": field_name, "location": "body", "issue": issue}


def link(base_url: str, path: str, rel: str) -> dict[str, str]:
    return {"href": base_url + path, "rel": rel, "method": "GET"}


def paging(query: Mapping[str, list[str]]) -> tuple[int, int, bool] | list[dict[str, str]]:
    values: dict[str, int] = {"page": 1, "page_size": MAX_PAGE_SIZE}
    problems: list[dict[str, str]] = []
    for name, maximum in (("page", MAX_PAGE), ("page_size", MAX_PAGE_SIZE)):
        raw = query.get(name)
        if raw is None:
            continue
        text = raw[-1]
        if not text.isdigit() or not 1 <= int(text) <= maximum:
            problems.append(
                {"field": name, "location": "query", "issue": f"must be 1 to {maximum}"}
            )
        else:
            values[name] = int(text)
    total = query.get("total_required", ["false"])[-1].lower()
    if total not in ("true", "false"):
        problems.append(
            {"field": "total_required", "location": "query", "issue": "must be true or false"}
        )
    return problems or (values["page"], values["page_size"], total == "true")


def _text_field(
    document: Mapping[str, Any],
    key: str,
    where: str,
    problems: list[dict[str, str]],
    *,
    maximum: int,
    required: bool = False,
) -> str | None:
    value = document.get(key)
    if value is None:
        if required:
            problems.append(detail(f"{where}.{key}", "Required field missing"))
        return None
    if not isinstance(value, str) or len(value) > maximum or (required and not value):
        problems.append(detail(f"{where}.{key}", f"Must be text of up to {maximum} characters"))
        return None
    return value


def _validate_amount(value: Any, where: str, problems: list[dict[str, str]]) -> Money | None:
    if not isinstance(value, dict):
        problems.append(detail(where, "Required field missing"))
        return None
    currency, text = value.get("currency"), value.get("value")
    if not isinstance(currency, str):
        problems.append(detail(f"{where}.currency", "Required field missing"))
        return None
    if not isinstance(text, str):
        problems.append(detail(f"{where}.value", "Amount value must be a string"))
        return None
    try:
        exponent = minor_unit_exponent(currency)
    except UnknownCurrency:
        problems.append(detail(f"{where}.currency", "Currency code is invalid"))
        return None
    try:
        amount = parse_amount_text(text, currency)
    except InvalidAmount:
        if "." in text and len(text.partition(".")[2]) > exponent and exponent == 0:
            issue = "Currency does not support decimals"
        else:
            issue = f"Amount must be a positive decimal with at most {exponent} decimal places"
        problems.append(detail(f"{where}.value", issue))
        return None
    if amount.minor <= 0:
        problems.append(detail(f"{where}.value", "Amount must be greater than zero"))
        return None
    return amount


def validate_batch(body: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Every problem of a ``create_payout_request`` (whole-batch refusal), else the items."""
    problems: list[dict[str, str]] = []
    header = body.get("sender_batch_header")
    if not isinstance(header, dict):
        problems.append(detail("sender_batch_header", "Required field missing"))
        header = {}
    _text_field(header, "sender_batch_id", "sender_batch_header", problems, maximum=256)
    _text_field(header, "email_subject", "sender_batch_header", problems, maximum=255)
    _text_field(header, "email_message", "sender_batch_header", problems, maximum=1000)
    default_type = header.get("recipient_type")
    if default_type is not None and default_type not in RecipientType.__members__:
        problems.append(detail("sender_batch_header.recipient_type", "Recipient type is invalid"))
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        problems.append(detail("items", f"Must hold 1 to {MAX_BATCH_ITEMS} payout items"))
        return problems, []
    accepted: list[dict[str, Any]] = []
    sender_item_ids: set[str] = set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            problems.append(detail(where, "Payout item must be an object"))
            continue
        recipient_type = item.get("recipient_type", default_type)
        if recipient_type not in RecipientType.__members__:
            problems.append(detail(f"{where}.recipient_type", "Recipient type is invalid"))
        receiver = _text_field(item, "receiver", where, problems, maximum=127, required=True)
        if receiver is not None and recipient_type == "EMAIL" and "@" not in receiver:
            problems.append(
                detail(f"{where}.receiver", "Receiver is invalid or does not match with type")
            )
        amount = _validate_amount(item.get("amount"), f"{where}.amount", problems)
        sender_item_id = _text_field(item, "sender_item_id", where, problems, maximum=63)
        if sender_item_id is not None:
            if sender_item_id in sender_item_ids:
                problems.append(
                    detail(
                        f"{where}.sender_item_id", "This transaction is duplicated in this batch"
                    )
                )
            sender_item_ids.add(sender_item_id)
        note = _text_field(item, "note", where, problems, maximum=4000)
        if receiver is not None and amount is not None:
            accepted.append(
                {
                    "recipient_type": recipient_type,
                    "receiver": receiver,
                    "amount": amount,
                    "sender_item_id": sender_item_id,
                    "note": note,
                }
            )
    return problems, accepted
