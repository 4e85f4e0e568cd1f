"""How easy a notice is to read: Flesch reading ease in English, Kandel–Moles in French.

Both formulas are ``base − a × words per sentence − b × syllables per word`` (higher is
easier; 60 and above reads as plain language). textstat counts words and sentences in both
languages and, for French, computes Kandel–Moles itself (its ``fr`` Flesch constants are
Kandel and Moles' 207, 1.015 and 73.6, with Pyphen's French hyphenation for syllables).

For English, textstat's syllable count looks every word up in NLTK's CMU dictionary and
downloads that dictionary when it is missing. A server must not fetch data at run time, so
the English score is computed here with textstat's own counts and Pyphen's English
hyphenation for syllables — what textstat itself does for words the dictionary lacks.

Lines that are references rather than prose (fideslang keys, web addresses) are left out of
the score, and a line without end punctuation (a heading, a list entry) counts as a sentence.
"""

from __future__ import annotations

import re

from parrain.consent.schemas import NoticeLanguage, ReadabilityFormula

#: Flesch (1948), for English.
FLESCH = (206.835, 1.015, 84.6)
#: Kandel & Moles (1958), Flesch adapted to French; for reference, textstat computes it.
KANDEL_MOLES = (207.0, 1.015, 73.6)

FORMULA_OF: dict[NoticeLanguage, ReadabilityFormula] = {
    NoticeLanguage.EN: "flesch_reading_ease",
    NoticeLanguage.FR: "kandel_moles",
}

_DOTTED = re.compile(r"\(?\b[\w-]+(?:\.[\w-]+)+\b\)?")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+\.)\s+")


def prose_of(content: str) -> str:
    """The notice as running sentences: references removed, each line one sentence at least."""
    sentences: list[str] = []
    for raw in content.splitlines():
        line = _DOTTED.sub("", _LIST_MARK.sub("", raw)).strip(" \u00a0,:;")
        if not line:
            continue
        sentences.append(line if line[-1] in ".!?" else line + ".")
    return " ".join(sentences)


def _english_syllables(text: str) -> int:
    from textstat.backend.selections import list_words
    from textstat.backend.utils import get_pyphen

    hyphenator = get_pyphen("en_GB")
    return sum(len(hyphenator.positions(word)) + 1 for word in list_words(text, lowercase=True))


def score(content: str, language: NoticeLanguage) -> tuple[float, ReadabilityFormula]:
    """The readability of ``content`` (rounded to one decimal) and the formula's name."""
    # textstat imports NLTK (a third of a second): only rendering a notice pays for it.
    from textstat.backend.counts import count_sentences, count_words
    from textstat.backend.metrics import flesch_reading_ease

    text = prose_of(content)
    if language is NoticeLanguage.FR:
        value = float(flesch_reading_ease(text, "fr"))
    else:
        words = count_words(text)
        sentences = count_sentences(text)
        if not words or not sentences:
            value = 0.0
        else:
            base, per_sentence, per_syllable = FLESCH
            value = (
                base
                - per_sentence * (words / sentences)
                - per_syllable * (_english_syllables(text) / words)
            )
    return round(value, 1), FORMULA_OF[language]
