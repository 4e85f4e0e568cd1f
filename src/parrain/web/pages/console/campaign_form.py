"""The campaign form of the console: a new draft, or a draft's changes.

What a person types is read as text: amounts as decimals in the campaign's currency
(``5.00``, parsed exactly by :meth:`parrain.kit.money.Money.parse`), times as UTC, languages
as a comma-separated list. Each refusal is named on its field in the page's language, and
the whole form is shown again with what was typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignUpdate
from parrain.errors import ParrainError
from parrain.kit.money import Money, validate_currency

#: Amount fields of the form, typed as decimals, and the schema field each sets.
AMOUNTS: Final = {
    "reward_cash": "reward_cash_minor",
    "reward_coupon": "reward_coupon_minor",
    "friend_welcome": "friend_welcome_minor",
    "coupon_min_spend": "coupon_min_spend_minor",
    "min_order": "min_order_minor",
}
NUMBERS: Final = (
    "friends_needed",
    "enrolment_window_hours",
    "holding_days",
    "coupon_valid_days",
    "attribution_window_hours",
    "new_customer_days",
)
MOMENTS: Final = ("starts_at", "ends_at")
CHOICES: Final = {
    "attribution_model": ("last_click", "first_click"),
    "qualifying_action": ("signup", "first_order"),
}
#: Every field of the form, in the order it shows them; market and currency only on a new one.
FIELDS: Final = (
    "name",
    "market",
    "currency",
    "languages",
    *MOMENTS,
    "friends_needed",
    "enrolment_window_hours",
    "reward_cash",
    "reward_coupon",
    "friend_welcome",
    "holding_days",
    "coupon_min_spend",
    "coupon_valid_days",
    "attribution_model",
    "attribution_window_hours",
    "new_customer_days",
    "qualifying_action",
    "min_order",
    "landing_url",
)
_FORM_FIELD_OF: Final = {schema: form for form, schema in AMOUNTS.items()}
_MOMENT_FORMAT: Final = "%Y-%m-%dT%H:%M"
DEFAULT_DURATION: Final = timedelta(days=30)


@dataclass
class CampaignForm:
    """What the form shows: the values as typed, and a message per refused field."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The summary lists the refusals in the order the fields appear.
        self.errors = {name: self.errors[name] for name in FIELDS if name in self.errors} | {
            name: message for name, message in self.errors.items() if name not in FIELDS
        }


def _moment_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_MOMENT_FORMAT)


def blank_form(now: datetime) -> CampaignForm:
    """A new campaign's form with the defaults of :class:`CampaignCreate`."""
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    return CampaignForm(
        {
            "name": "",
            "market": "",
            "currency": "",
            "languages": "",
            "starts_at": _moment_text(start),
            "ends_at": _moment_text(start + DEFAULT_DURATION),
            "friends_needed": "3",
            "enrolment_window_hours": "24",
            "reward_cash": "0",
            "reward_coupon": "0",
            "friend_welcome": "0",
            "holding_days": "7",
            "coupon_min_spend": "0",
            "coupon_valid_days": "90",
            "attribution_model": "last_click",
            "attribution_window_hours": str(7 * 24),
            "new_customer_days": "365",
            "qualifying_action": "signup",
            "min_order": "0",
            "landing_url": "",
        }
    )


def form_of(campaign: CampaignRead) -> CampaignForm:
    """A draft's form, filled with its rules."""
    values = {
        "name": campaign.name,
        "market": campaign.market,
        "currency": campaign.currency,
        "languages": ", ".join(campaign.languages),
        "starts_at": _moment_text(campaign.starts_at),
        "ends_at": _moment_text(campaign.ends_at),
        "attribution_model": campaign.attribution_model,
        "qualifying_action": campaign.qualifying_action,
        "landing_url": campaign.landing_url or "",
    }
    values |= {name: str(getattr(campaign, name)) for name in NUMBERS}
    values |= {
        form: Money(getattr(campaign, schema), campaign.currency).plain()
        for form, schema in AMOUNTS.items()
    }
    return CampaignForm(values)


class Messages:
    """The form's refusals in the page's language."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self.gettext = gettext

    def required(self) -> str:
        return self.gettext("Fill this in.")

    def number(self) -> str:
        return self.gettext("Enter a whole number.")

    def number_range(self, low: object, high: object) -> str:
        return self.gettext("Enter a whole number from %(low)s to %(high)s.") % {
            "low": low,
            "high": high,
        }

    def amount(self) -> str:
        return self.gettext(
            "Enter an amount such as 5.00, with no more decimals than the currency has."
        )

    def moment(self) -> str:
        return self.gettext("Enter a date and time, in UTC.")

    def invalid(self) -> str:
        return self.gettext("This value is not valid.")

    def by_field(self, name: str) -> str | None:
        gettext = self.gettext
        return {
            "name": gettext("Give the campaign a name of at most 120 characters."),
            "market": gettext("Enter a two-letter country code such as GB or FR."),
            "currency": gettext("Enter a three-letter currency code such as GBP or EUR."),
            "languages": gettext(
                "Enter two-letter language codes separated by commas, such as en, fr, each once."
            ),
            "landing_url": gettext("Enter an address that starts with https:// or http://."),
        }.get(name)

    def ends_before_start(self) -> str:
        return self.gettext("The campaign must end after it starts.")

    def no_reward(self) -> str:
        return self.gettext("The reward must be greater than zero.")

    def name_taken(self) -> str:
        return self.gettext("Another campaign already has this name.")


def _clean(submitted: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for name in FIELDS:
        raw = submitted.get(name, "")
        values[name] = raw.strip()[:2048] if isinstance(raw, str) else ""
    return values


def _currency(text: str) -> str | None:
    try:
        return validate_currency(text.upper())
    except ParrainError:
        return None


def _model_error(message: str, messages: Messages) -> tuple[str, str]:
    if "end after it starts" in message:
        return "ends_at", messages.ends_before_start()
    if "reward" in message:
        return "reward_cash", messages.no_reward()
    if "language" in message:
        return "languages", messages.by_field("languages") or messages.invalid()
    return "name", messages.invalid()


def _describe(error: ValidationError, messages: Messages) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        location = item.get("loc") or ()
        if not location:
            name, message = _model_error(str(item.get("msg", "")), messages)
            found.setdefault(name, message)
            continue
        schema_name = str(location[0])
        name = _FORM_FIELD_OF.get(schema_name, schema_name)
        context = item.get("ctx") or {}
        if item["type"] == "missing":
            message = messages.required()
        elif name in NUMBERS and ("ge" in context or "le" in context):
            low, high = _bounds(schema_name)
            message = messages.number_range(low, high)
        else:
            message = messages.by_field(name) or messages.invalid()
        found.setdefault(name, message)
    return found


def _bounds(schema_name: str) -> tuple[object, object]:
    low: object = ""
    high: object = ""
    for constraint in CampaignCreate.model_fields[schema_name].metadata:
        low = getattr(constraint, "ge", low)
        high = getattr(constraint, "le", high)
    return low, high


def _typed(
    values: dict[str, str], *, currency: str | None, messages: Messages
) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in NUMBERS:
        text = values[name]
        if not text:
            errors[name] = messages.required()
        elif not text.isdigit() or len(text) > 9:
            errors[name] = messages.number()
        else:
            data[name] = int(text)
    for form_name, schema_name in AMOUNTS.items():
        text = values[form_name] or "0"
        if currency is None:
            data[schema_name] = 0  # the currency's own message says what to fix first
            continue
        try:
            data[schema_name] = Money.parse(text, currency).minor
        except ParrainError:
            errors[form_name] = messages.amount()
    for name in MOMENTS:
        try:
            moment = datetime.fromisoformat(values[name])
        except ValueError:
            errors[name] = messages.required() if not values[name] else messages.moment()
            continue
        data[name] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    for name, allowed in CHOICES.items():
        if values[name] in allowed:
            data[name] = values[name]
        else:
            errors[name] = messages.invalid()
    starts, ends = data.get("starts_at"), data.get("ends_at")
    if starts is not None and ends is not None and starts >= ends:
        errors["ends_at"] = messages.ends_before_start()
    cash, coupon = data.get("reward_cash_minor"), data.get("reward_coupon_minor")
    if currency is not None and cash == 0 and coupon == 0:
        errors["reward_cash"] = messages.no_reward()
    data["name"] = values["name"]
    data["languages"] = [part.strip().lower() for part in values["languages"].split(",") if part]
    data["landing_url"] = values["landing_url"] or None
    return data, errors


def read_new(
    submitted: Mapping[str, Any], messages: Messages
) -> tuple[CampaignForm, CampaignCreate | None]:
    """The form as sent, and the new campaign it describes when every field is right."""
    values = _clean(submitted)
    currency = _currency(values["currency"])
    data, errors = _typed(values, currency=currency, messages=messages)
    if currency is None:
        errors.setdefault("currency", messages.by_field("currency") or messages.invalid())
    data["market"] = values["market"].upper()
    data["currency"] = currency or values["currency"]
    try:
        created = CampaignCreate(**data)
    except ValidationError as error:
        for name, message in _describe(error, messages).items():
            errors.setdefault(name, message)
        return CampaignForm(values, errors), None
    if errors:
        return CampaignForm(values, errors), None
    return CampaignForm(values), created


def read_changes(
    submitted: Mapping[str, Any], campaign: CampaignRead, messages: Messages
) -> tuple[CampaignForm, CampaignUpdate | None]:
    """The form as sent for a draft (its market and currency are fixed), and the changes."""
    values = _clean(submitted) | {"market": campaign.market, "currency": campaign.currency}
    data, errors = _typed(values, currency=campaign.currency, messages=messages)
    try:
        changes = CampaignUpdate(**data)
    except ValidationError as error:
        for name, message in _describe(error, messages).items():
            errors.setdefault(name, message)
        return CampaignForm(values, errors), None
    if errors:
        return CampaignForm(values, errors), None
    return CampaignForm(values), changes
