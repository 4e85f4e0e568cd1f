"""The consent policy, without a database: what it refuses, one explained reason each."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrain.consent import policy, taxonomy
from parrain.consent.policy import PolicyLimits, evaluate
from parrain.consent.schemas import Channel, DeclarationItem, LegalBasis
from tests.consent.declarations import (
    CONTROLLER,
    clause_of_the_case,
    honest,
    photo_in_ads,
    programme_items,
)


def codes(items: list[DeclarationItem] | None, limits: PolicyLimits = PolicyLimits()) -> list[str]:
    return [finding.code for finding in evaluate(items, limits)]


def test_the_clause_of_the_case_is_refused_with_one_reason_per_problem() -> None:
    findings = evaluate(clause_of_the_case().items)

    summary = [(f.code, f.article, f.items) for f in findings]
    every_item = (1, 2, 3, 4, 5, 6, 7)
    assert summary == [
        ("consent_bundled", "Art. 7(4)", every_item),
        ("controller_unnamed", "Art. 13(1)(a)", every_item),
        ("channel_any_media", "Art. 5(1)(b)", every_item),
        ("territory_worldwide", "Art. 13(1)(f)", every_item),
        ("duration_open_ended", "Art. 5(1)(e)", every_item),
        ("special_category", "Art. 9(1)", (3,)),  # the voice: biometric data
        ("special_category", "Art. 9(1)", (4,)),  # the opinions: political opinions
    ]
    for finding in findings:
        assert f"(GDPR {finding.article}; item" in finding.message
    messages = {f.code: f.message for f in findings}
    assert (
        "'marketing.advertising' is not needed to run the programme" in messages["consent_bundled"]
    )
    assert "reward does not depend on" in messages["consent_bundled"]
    assert messages["controller_unnamed"].startswith("'Sponsor' is not a legal name")
    assert messages["channel_any_media"].startswith("'any media' is not a channel")
    assert messages["territory_worldwide"].startswith("'worldwide' is not a territory")
    assert "perpetual" in messages["duration_open_ended"]
    assert [f.message for f in findings if f.code == "special_category"] == [
        "'user.biometric.voice' is a special category of personal data (biometric data): a "
        "referral programme has no reason to use it (GDPR Art. 9(1); item 3)",
        "'user.demographic.political_opinion' is a special category of personal data "
        "(political opinions): a referral programme has no reason to use it "
        "(GDPR Art. 9(1); item 4)",
    ]


def test_the_programme_with_a_six_month_advertising_consent_is_accepted() -> None:
    assert evaluate(honest().items) == []
    assert evaluate(programme_items()) == []


def test_a_campaign_without_a_declaration_does_not_pass() -> None:
    [finding] = evaluate(None)
    assert finding.code == "declaration_missing"
    assert finding.items == ()
    assert "no data-use declaration" in finding.message
    assert "GDPR Art. 13(1)(c)" in finding.message


def test_the_advertising_maximum_is_configurable() -> None:
    six_months = [photo_in_ads(max_days=183)]
    assert codes(six_months) == []
    assert codes([photo_in_ads(max_days=184)]) == ["duration_too_long"]
    [finding] = evaluate(six_months, PolicyLimits(max_advertising_days=90))
    assert finding.code == "duration_too_long"
    assert finding.message == (
        "183 days is longer than the 90 days allowed for an advertising or marketing use "
        "(GDPR Art. 5(1)(e); item 1)"
    )
    # Uses that are not marketing have their own maximum.
    username, _photo, paypal = programme_items()
    assert codes([paypal]) == []  # 365 days
    assert codes([paypal], PolicyLimits(max_days=364)) == ["duration_too_long"]
    assert codes([username], PolicyLimits(max_advertising_days=1)) == []


@pytest.mark.parametrize(
    ("category", "label", "article"),
    [
        ("user.biometric.fingerprint", "biometric data", "Art. 9(1)"),
        ("user.authorization.biometric", "biometric data", "Art. 9(1)"),
        ("user.health_and_medical", "health data", "Art. 9(1)"),
        ("user.health_and_medical.genetic", "genetic data", "Art. 9(1)"),
        ("user.demographic.religious_belief", "religious or philosophical beliefs", "Art. 9(1)"),
        ("user.demographic.sexual_orientation", "sexual orientation", "Art. 9(1)"),
        ("user.demographic.race_ethnicity", "racial or ethnic origin", "Art. 9(1)"),
        ("user.criminal_history", "criminal convictions and offences", "Art. 10"),
    ],
)
def test_special_categories_are_refused_even_with_consent(
    category: str, label: str, article: str
) -> None:
    [finding] = evaluate([photo_in_ads(data_category=category)])
    assert (finding.code, finding.article) == ("special_category", article)
    assert f"({label})" in finding.message


@pytest.mark.parametrize("category", ["user", "user.demographic", "user.authorization"])
def test_a_category_that_includes_special_ones_is_too_broad(category: str) -> None:
    [finding] = evaluate([photo_in_ads(data_category=category)])
    assert (finding.code, finding.article) == ("category_too_broad", "Art. 5(1)(c)")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"channels": []}, "channel_missing"),
        ({"channels": ["app", "All media"]}, "channel_any_media"),
        ({"channels": ["app", "hologram"]}, "channel_unlisted"),
        ({"territories": []}, "territory_missing"),
        ({"territories": ["GB", "World-wide"]}, "territory_worldwide"),
        ({"territories": ["GB", "UK"]}, "territory_unknown"),
        ({"controllers": []}, "controller_missing"),
        ({"controllers": [CONTROLLER, "our partners"]}, "controller_unnamed"),
        ({"controllers": [" "]}, "controller_unnamed"),
        ({"max_days": None}, "duration_open_ended"),
        ({"legal_basis": LegalBasis.PROGRAMME}, "consent_bundled"),
        ({"data_use": "collect"}, "purpose_undefined"),
        ({"data_use": "marketing.nonsense"}, "unknown_data_use"),
        ({"data_category": "user.shoe_size"}, "unknown_data_category"),
        ({"data_use": "personalize.profiling"}, "unknown_data_use"),  # deprecated
    ],
)
def test_each_problem_is_one_finding(changes: dict[str, Any], code: str) -> None:
    assert codes([photo_in_ads(**changes)]) == [code]


def test_names_and_codes_are_compared_as_people_write_them() -> None:
    item = photo_in_ads(channels=["App", " web "], territories=["gb", "Fr"])
    assert evaluate([item]) == []


def test_every_key_the_policy_names_is_in_fideslang() -> None:
    categories = taxonomy.entries("data_category")
    uses = taxonomy.entries("data_use")
    assert set(policy.SPECIAL_CATEGORIES) <= set(categories)
    assert {*policy.PROGRAMME_USES, *policy.ADVERTISING_USES, *policy.UNDEFINED_PURPOSE_USES} <= (
        set(uses)
    )


# Properties: any declaration built from good parts passes, and one bad part is one finding.

NAMES = st.sampled_from([CONTROLLER, "Example Marketplace SAS", "Exemple Place de Marché SA"])
COUNTRIES = st.sampled_from(["GB", "FR", "IE", "BE", "DE", "ES", "IT", "NL"])
GOOD_PAIRS = st.sampled_from(
    [
        ("user.account.username", "essential.service.operations", LegalBasis.PROGRAMME),
        ("user.content.self_image", "essential.service.operations", LegalBasis.PROGRAMME),
        ("user.contact.email", "essential.service.payment_processing", LegalBasis.PROGRAMME),
        ("user.device.device_id", "essential.fraud_detection", LegalBasis.PROGRAMME),
        ("user.content.self_image", "marketing.advertising.first_party", LegalBasis.CONSENT),
        ("user.content.public", "marketing.advertising", LegalBasis.CONSENT),
        ("user.name.first", "marketing.advertising.first_party", LegalBasis.CONSENT),
        ("user.contact.email", "marketing.communications.email", LegalBasis.CONSENT),
        ("user.behavior.purchase_history", "analytics.reporting", LegalBasis.CONSENT),
    ]
)


@st.composite
def good_items(draw: st.DrawFn) -> list[DeclarationItem]:
    pairs = draw(st.lists(GOOD_PAIRS, min_size=1, max_size=6, unique_by=lambda p: p[:2]))
    items = []
    for category, use, basis in pairs:
        limit = 183 if use.startswith("marketing") else 365
        items.append(
            DeclarationItem(
                data_category=category,
                data_use=use,
                legal_basis=basis,
                controllers=draw(st.lists(NAMES, min_size=1, max_size=2, unique=True)),
                channels=draw(
                    st.lists(st.sampled_from(list(Channel)), min_size=1, max_size=4, unique=True)
                ),
                territories=draw(st.lists(COUNTRIES, min_size=1, max_size=4, unique=True)),
                max_days=draw(st.integers(min_value=1, max_value=limit)),
            )
        )
    return items


MUTATIONS: dict[str, dict[str, Any]] = {
    "channel_any_media": {"channels": ["any media"]},
    "channel_unlisted": {"channels": ["blimp"]},
    "territory_worldwide": {"territories": ["worldwide"]},
    "territory_unknown": {"territories": ["XQ"]},
    "duration_open_ended": {"max_days": None},
    "duration_too_long": {"max_days": 400},
    "controller_missing": {"controllers": []},
    "controller_unnamed": {"controllers": ["Sponsor"]},
    "special_category": {"data_category": "user.health_and_medical"},
}


@settings(max_examples=60, deadline=None)
@given(items=good_items())
def test_a_declaration_of_good_parts_passes(items: list[DeclarationItem]) -> None:
    assert evaluate(items) == []


@settings(max_examples=80, deadline=None)
@given(
    items=good_items(),
    code=st.sampled_from([*MUTATIONS, "consent_bundled"]),
    data=st.data(),
)
def test_one_bad_part_is_exactly_one_finding_naming_its_item(
    items: list[DeclarationItem], code: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
    if code == "consent_bundled":
        changes: dict[str, Any] = {
            "data_category": "user.content.self_image",
            "data_use": "marketing.advertising.third_party",
            "legal_basis": LegalBasis.PROGRAMME,
            "max_days": 30,
        }
    else:
        changes = MUTATIONS[code]
    items[index] = items[index].model_copy(update=changes)
    [finding] = evaluate(items)
    assert finding.code == code
    assert finding.items == (index + 1,)
    assert f"GDPR {finding.article}" in finding.message
