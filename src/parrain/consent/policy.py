"""The consent policy: which data-use declarations a campaign may launch with. Pure.

:func:`evaluate` returns one :class:`PolicyFinding` per problem: a stable code, a sentence an
operator understands and the GDPR article it rests on. A problem shared by several items
("any media" on seven of them) is one finding that lists the items. An empty list means the
declaration passes. What it refuses, and why, is ADR 11:

* a use with no maximum duration (perpetual), or longer than the configured maximum;
* "any media" and channels outside the closed list of :class:`~.schemas.Channel`;
* controllers that are missing or not a legal name ("Sponsor", "our partners");
* special categories of data (GDPR Art. 9 and 10), and categories so broad they include them;
* "worldwide", missing or unknown territories (ISO 3166 codes only);
* an optional use declared as required (legal basis ``programme``): bundled with the reward;
* fideslang's ``collect`` (a purpose not yet decided) and keys the taxonomy does not know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from parrain.consent import taxonomy
from parrain.consent.schemas import Channel, DeclarationItem, LegalBasis
from parrain.kit.regions import validate_market

#: Data uses that running a referral programme needs: operating it (showing a member's
#: invitation to their friends, fraud checks, notifications, support), paying rewards, and
#: the accounts the law requires. Any other use is optional and needs separate consent.
PROGRAMME_USES = ("essential", "finance")
#: Uses held to the (shorter) advertising maximum.
ADVERTISING_USES = ("marketing",)
#: "Collects data for a purpose not yet defined": never a purpose (Art. 5(1)(b)).
UNDEFINED_PURPOSE_USES = ("collect",)

#: The special categories, as fideslang spells them, with what they are and the article
#: that sets them apart. fideslang has no key for trade-union membership; a declaration
#: cannot name it, so there is nothing to match.
SPECIAL_CATEGORIES: dict[str, tuple[str, str]] = {
    "user.biometric": ("biometric data", "Art. 9(1)"),
    "user.authorization.biometric": ("biometric data", "Art. 9(1)"),
    "user.health_and_medical": ("health data", "Art. 9(1)"),
    "user.health_and_medical.genetic": ("genetic data", "Art. 9(1)"),
    "user.demographic.political_opinion": ("political opinions", "Art. 9(1)"),
    "user.demographic.religious_belief": ("religious or philosophical beliefs", "Art. 9(1)"),
    "user.demographic.sexual_orientation": ("sexual orientation", "Art. 9(1)"),
    "user.demographic.race_ethnicity": ("racial or ethnic origin", "Art. 9(1)"),
    "user.criminal_history": ("criminal convictions and offences", "Art. 10"),
}

#: Written instead of channels: every medium at once is not a specific purpose.
ANY_MEDIA = frozenset(
    {
        "*",
        "all",
        "all_channels",
        "all_media",
        "any",
        "any_channel",
        "any_media",
        "any_medium",
        "every_media",
        "everywhere",
        "media",
        "in_any_media",
    }
)
#: Written instead of countries.
WORLDWIDE = frozenset(
    {
        "*",
        "001",
        "all",
        "any",
        "everywhere",
        "global",
        "international",
        "world",
        "world_wide",
        "worldwide",
    }
)
#: Roles, not legal names: a member cannot tell who is responsible from them.
ROLE_WORDS = frozenset(
    {
        "affiliates",
        "assigns",
        "company",
        "group companies",
        "its affiliates",
        "licensees",
        "marketplace",
        "our affiliates",
        "our partners",
        "partners",
        "sponsor",
        "sponsor and its affiliates",
        "the company",
        "the marketplace",
        "the sponsor",
        "third parties",
        "us",
        "we",
    }
)

_SEPARATORS = re.compile(r"[\s\-]+")
_HAS_TWO_LETTERS = re.compile(r"[^\W\d_].*[^\W\d_]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """The longest durations the policy accepts, in days (``ConsentSettings``)."""

    max_advertising_days: int = 183
    max_days: int = 365


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    code: str
    message: str
    article: str
    items: tuple[int, ...]


@dataclass(slots=True)
class _Problem:
    code: str
    sentence: str
    article: str
    items: list[int] = field(default_factory=list)


_CHANNELS = frozenset(channel.value for channel in Channel)


def _word(value: str) -> str:
    """``"Any media"`` → ``any_media``: how a channel or place is compared with the lists."""
    return _SEPARATORS.sub("_", value.strip().lower())


def is_programme_use(use: str) -> bool:
    return any(taxonomy.is_within(use, root) for root in PROGRAMME_USES)


def is_advertising_use(use: str) -> bool:
    return any(taxonomy.is_within(use, root) for root in ADVERTISING_USES)


def special_category(category: str) -> tuple[str, str] | None:
    """What special category ``category`` is (its label and article), or ``None``."""
    for key in taxonomy.lineage(category):
        if key in SPECIAL_CATEGORIES:
            return SPECIAL_CATEGORIES[key]
    return None


def special_categories_within(category: str) -> list[str]:
    """The labels of the special categories strictly below ``category``, each once."""
    labels: list[str] = []
    for key, (label, _article) in SPECIAL_CATEGORIES.items():
        if key != category and taxonomy.is_within(key, category) and label not in labels:
            labels.append(label)
    return labels


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _problems_of(item: DeclarationItem, limits: PolicyLimits) -> list[tuple[str, str, str]]:
    """(code, sentence, article) for each problem of one item, in a fixed order."""
    found: list[tuple[str, str, str]] = []
    category, use = item.data_category, item.data_use

    keys: tuple[tuple[taxonomy.TaxonomyKind, str, str], ...] = (
        ("data_category", category, "unknown_data_category"),
        ("data_use", use, "unknown_data_use"),
    )
    for kind, key, code in keys:
        problem = taxonomy.problem_with(kind, key)
        if problem is not None:
            found.append((code, f"{problem}: a notice cannot say what it means", "Art. 5(1)(a)"))

    if any(taxonomy.is_within(use, root) for root in UNDEFINED_PURPOSE_USES):
        found.append(
            (
                "purpose_undefined",
                f"{use!r} keeps data for a purpose not yet decided: declare the actual purpose",
                "Art. 5(1)(b)",
            )
        )
    if item.legal_basis is LegalBasis.PROGRAMME and not is_programme_use(use):
        found.append(
            (
                "consent_bundled",
                f"{use!r} is not needed to run the programme, yet it is declared as required "
                "(legal basis 'programme'): make it a separate, optional consent that the "
                "reward does not depend on",
                "Art. 7(4)",
            )
        )

    special = special_category(category)
    if special is not None:
        label, article = special
        found.append(
            (
                "special_category",
                f"{category!r} is a special category of personal data ({label}): a referral "
                "programme has no reason to use it",
                article,
            )
        )
    else:
        covered = special_categories_within(category)
        if covered:
            found.append(
                (
                    "category_too_broad",
                    f"{category!r} is too broad: it includes special categories "
                    f"({', '.join(covered)}); declare only the specific data used",
                    "Art. 5(1)(c)",
                )
            )

    if not item.controllers:
        found.append(
            (
                "controller_missing",
                "no controller is named: say which company is responsible for this use",
                "Art. 13(1)(a)",
            )
        )
    for name in item.controllers:
        if name.strip().lower().rstrip(".") in ROLE_WORDS or not _HAS_TWO_LETTERS.search(name):
            found.append(
                (
                    "controller_unnamed",
                    f"{name!r} is not a legal name: name the company as registered, "
                    "e.g. 'Example Marketplace Ltd'",
                    "Art. 13(1)(a)",
                )
            )

    known_channels = ", ".join(channel.value for channel in Channel)
    if not item.channels:
        found.append(
            (
                "channel_missing",
                f"no channel is named: say where the data is used ({known_channels})",
                "Art. 5(1)(b)",
            )
        )
    for channel in item.channels:
        word = _word(channel)
        if word in ANY_MEDIA:
            found.append(
                (
                    "channel_any_media",
                    f"{channel!r} is not a channel: a grant for any media is not specific; "
                    f"name each channel ({known_channels})",
                    "Art. 5(1)(b)",
                )
            )
        elif word not in _CHANNELS:
            found.append(
                (
                    "channel_unlisted",
                    f"{channel!r} is not one of the channels a notice can name ({known_channels})",
                    "Art. 5(1)(b)",
                )
            )

    if not item.territories:
        found.append(
            (
                "territory_missing",
                "no territory is named: list the countries where the data is used, as ISO "
                "3166 codes such as GB or FR",
                "Art. 13(1)(f)",
            )
        )
    for place in item.territories:
        if _word(place) in WORLDWIDE:
            found.append(
                (
                    "territory_worldwide",
                    f"{place!r} is not a territory: name each country where the data is used, "
                    "as ISO 3166 codes such as GB or FR",
                    "Art. 13(1)(f)",
                )
            )
            continue
        try:
            validate_market(place)
        except ValueError:
            found.append(
                (
                    "territory_unknown",
                    f"{place!r} is not an ISO 3166 country code such as GB or FR",
                    "Art. 13(1)(f)",
                )
            )

    if item.max_days is None:
        found.append(
            (
                "duration_open_ended",
                "no maximum duration: a grant without an end is perpetual; give the longest "
                "time, in days, the data is kept or shown for this use",
                "Art. 5(1)(e)",
            )
        )
    else:
        advertising = is_advertising_use(use)
        limit = limits.max_advertising_days if advertising else limits.max_days
        if item.max_days > limit:
            what = "an advertising or marketing use" if advertising else "a use"
            found.append(
                (
                    "duration_too_long",
                    f"{_days(item.max_days)} is longer than the {_days(limit)} allowed for {what}",
                    "Art. 5(1)(e)",
                )
            )
    return found


def _items_text(items: Sequence[int]) -> str:
    label = "item" if len(items) == 1 else "items"
    return f"{label} {', '.join(str(number) for number in items)}"


def evaluate(
    items: Sequence[DeclarationItem] | None, limits: PolicyLimits = PolicyLimits()
) -> list[PolicyFinding]:
    """The findings that stop a campaign with this declaration from launching; ``items`` is
    ``None`` when the campaign has no declaration. Items are numbered from 1."""
    if items is None:
        return [
            PolicyFinding(
                code="declaration_missing",
                message=(
                    "the campaign has no data-use declaration: declare what data it uses, why, "
                    "where, by whom and for how long before it launches (GDPR Art. 13(1)(c))"
                ),
                article="Art. 13(1)(c)",
                items=(),
            )
        ]
    problems: dict[tuple[str, str], _Problem] = {}
    for number, item in enumerate(items, start=1):
        for code, sentence, article in _problems_of(item, limits):
            problem = problems.setdefault(
                (code, sentence), _Problem(code=code, sentence=sentence, article=article)
            )
            if number not in problem.items:
                problem.items.append(number)
    return [
        PolicyFinding(
            code=problem.code,
            message=f"{problem.sentence} (GDPR {problem.article}; {_items_text(problem.items)})",
            article=problem.article,
            items=tuple(problem.items),
        )
        for problem in problems.values()
    ]
