"""Notices, without a database: layered plain language in both languages, the same bytes for
the same declaration, a readability score computed offline."""

from __future__ import annotations

import hashlib

import nltk
import pyphen  # type: ignore[import-untyped]
import pytest

from parrain.consent import notices, taxonomy, wording
from parrain.consent.readability import prose_of, score
from parrain.consent.schemas import Channel, NoticeLanguage
from tests.consent.declarations import clause_of_the_case, honest, photo_in_ads, programme_items

EN, FR = NoticeLanguage.EN, NoticeLanguage.FR


def render(language: NoticeLanguage, version: int = 1, **kwargs: object) -> notices.RenderedNotice:
    fields: dict[str, object] = {
        "campaign_name": "Cash Rewards UK",
        "market": "GB",
        "version": version,
        "items": honest().items,
    }
    fields.update(kwargs)
    return notices.render(language=language, **fields)  # type: ignore[arg-type]


def test_the_short_layer_says_who_what_why_how_long_and_that_the_reward_does_not_depend_on_it() -> (
    None
):
    content = render(EN).content
    short, detail = content.split("IN DETAIL")
    assert "Who is responsible: Example Marketplace Ltd." in short
    assert (
        "- your username, shown to the friends you invite, so they know the invitation is "
        "from you, for 6 months at most." in short
    )
    assert "to pay the cash part of your reward, for 1 year at most." in short
    assert "Only if you say yes, we would also like to use:\n- your photo, in our adverts" in short
    assert "Your reward does not depend on this. If you say no, you get the same reward." in short
    assert "One tap on your programme page withdraws your consent." in short
    assert "complain to the ICO" in short
    assert "4. Your photo\nWhy: in our adverts.\nIs it needed? No." in detail
    assert "Where: in the app, on the website, and on social networks." in detail
    assert "Countries: United Kingdom." in detail
    assert "Data type: user.content.self_image, for marketing.advertising.first_party" in detail


def test_the_french_notice_is_written_in_french() -> None:
    content = render(FR, market="FR", items=honest("FR").items).content
    short, detail = content.split("EN DÉTAIL")
    assert "Responsable\u00a0: Example Marketplace Ltd." in short
    assert "- votre photo, dans nos publicités, pendant 6 mois au plus." in short
    assert "Votre récompense n'en dépend pas. Si vous dites non, vous avez la même récompense." in (
        short
    )
    assert "plaindre auprès de la CNIL" in short
    assert "Pays\u00a0: France." in detail
    assert "Où\u00a0: dans l'application, sur le site web et sur les réseaux sociaux." in detail
    assert "Est-ce nécessaire\u00a0? Non." in detail
    # French typography: a no-break space before : ; ? and !, never a plain one.
    for mark in ":;?!":
        assert f" {mark}" not in content


def test_a_programme_without_optional_uses_says_so() -> None:
    content = render(EN, items=programme_items()).content
    assert "We do not use your data for anything else, such as adverts." in content
    assert "Only if you say yes" not in content


def test_what_a_bad_declaration_says_is_rendered_as_written() -> None:
    content = render(EN, items=clause_of_the_case().items).content
    assert "Where: “any media”." in content
    assert "Countries: “worldwide”." in content
    assert "How long: no time limit is set." in content
    assert "- your voice, in our adverts, with no time limit." in content


def test_rendering_is_deterministic_and_the_hash_is_that_of_the_utf8_bytes() -> None:
    for language in notices.LANGUAGES:
        first, again = render(language), render(language)
        assert first == again
        assert first.sha256 == hashlib.sha256(first.content.encode("utf-8")).hexdigest()
        assert render(language, version=2).sha256 != first.sha256
        assert render(language, items=honest().items[:3]).sha256 != first.sha256


def test_readability_is_scored_in_both_languages_without_downloading_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_download(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a notice must be scored without fetching NLTK data")

    monkeypatch.setattr(nltk, "download", no_download)
    monkeypatch.setattr(nltk.data, "find", no_download)
    english = render(EN, campaign_name="Scored offline")
    french = render(FR, campaign_name="Noté hors ligne")
    assert english.readability_formula == "flesch_reading_ease"
    assert french.readability_formula == "kandel_moles"
    # Plain language: 60 and above on both scales.
    assert english.readability_score >= 60
    assert french.readability_score >= 60


def _syllables(words: list[str], language: str) -> int:
    """As the scores count them: hyphenation points + 1 per word (Pyphen, no dictionary)."""
    hyphenator = pyphen.Pyphen(lang=language)
    return sum(len(hyphenator.positions(word)) + 1 for word in words)


def test_the_scores_follow_their_formulas() -> None:
    english = "The cat sat. The neighbour's children ran to a beautiful garden."
    words = ["the", "cat", "sat", "the", "neighbour's", "children", "ran", "to", "a"]
    words += ["beautiful", "garden"]
    syllables = _syllables(words, "en_GB")
    assert syllables > len(words)  # "beau-ti-ful" is three
    # Flesch: 206.835 - 1.015 x words per sentence - 84.6 x syllables per word.
    assert score(english, EN) == (
        round(206.835 - 1.015 * 11 / 2 - 84.6 * syllables / 11, 1),
        "flesch_reading_ease",
    )
    french = "Le chat dort. Les enfants du voisin courent au jardin magnifique."
    words = ["le", "chat", "dort", "les", "enfants", "du", "voisin", "courent", "au"]
    words += ["jardin", "magnifique"]
    syllables = _syllables(words, "fr")
    # Kandel-Moles: 207 - 1.015 x words per sentence - 73.6 x syllables per word.
    assert score(french, FR) == (
        round(207 - 1.015 * 11 / 2 - 73.6 * syllables / 11, 1),
        "kandel_moles",
    )


def test_references_are_left_out_of_the_score() -> None:
    assert prose_of("Data type: user.content.self_image, for marketing.advertising") == (
        "Data type: , for."
    )
    assert prose_of("IN SHORT\n- your photo, for 6 months at most.") == (
        "IN SHORT. your photo, for 6 months at most."
    )


@pytest.mark.parametrize("language", list(NoticeLanguage))
def test_every_fideslang_key_and_channel_has_words(language: NoticeLanguage) -> None:
    for key in taxonomy.entries("data_category"):
        assert wording.category_words(key, language) != key
    for key in taxonomy.entries("data_use"):
        assert wording.use_words(key, language) != key
    for channel in Channel:
        assert wording.channel_words(channel.value, language) != channel.value


@pytest.mark.parametrize(
    ("days", "english", "french"),
    [
        (1, "1 day", "1 jour"),
        (14, "2 weeks", "2 semaines"),
        (30, "1 month", "1 mois"),
        (45, "45 days", "45 jours"),
        (180, "6 months", "6 mois"),
        (183, "6 months", "6 mois"),
        (184, "184 days", "184 jours"),
        (365, "1 year", "1 an"),
        (730, "2 years", "2 ans"),
    ],
)
def test_durations_are_named_in_words(days: int, english: str, french: str) -> None:
    assert wording.duration_words(days, EN) == english
    assert wording.duration_words(days, FR) == french


def test_a_declared_purpose_replaces_the_generic_words() -> None:
    item = photo_in_ads(purpose={"en": "on the posters of our spring campaign."})
    english = render(EN, items=[item]).content
    french = render(FR, items=[item]).content
    assert "Why: on the posters of our spring campaign.\n" in english
    assert "Pourquoi\u00a0: dans nos publicités.\n" in french  # no French purpose: generic
