"""Render a declaration version as a layered, plain-language notice (English and French).

The short layer says who is responsible, what the programme uses and why, how long, what is
optional (and that the reward does not depend on it) and how to withdraw; the detail then
takes each item in turn. The templates are ``templates/notice.<language>.txt``; the words
for keys, channels, countries and durations come from :mod:`parrain.consent.wording`.

Rendering is a pure function of the campaign's name and market, the version and the items:
the same declaration always gives the same text, byte for byte, hence the same SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from parrain.consent import wording
from parrain.consent.readability import score
from parrain.consent.schemas import DeclarationItem, LegalBasis, NoticeLanguage, ReadabilityFormula

#: The languages every declaration version is rendered in.
LANGUAGES = (NoticeLanguage.EN, NoticeLanguage.FR)

_FRENCH_SPACE = re.compile(r" ([:;?!])")


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    language: NoticeLanguage
    content: str
    sha256: str
    readability_score: float
    readability_formula: ReadabilityFormula


@dataclass(frozen=True, slots=True)
class _Line:
    """One declared item, in words."""

    number: int
    what: str
    why: str
    needed: bool
    controllers: str
    channels: str
    territories: str
    duration: str | None
    category: str
    use: str


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("parrain.consent", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # The notices are plain text: only HTML or XML templates would be escaped.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml")),
    )
    environment.filters["first_upper"] = lambda text: text[:1].upper() + text[1:]
    return environment


def content_hash(content: str) -> str:
    """SHA-256, in hex, of the exact UTF-8 bytes of ``content``."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _line(number: int, item: DeclarationItem, language: NoticeLanguage) -> _Line:
    purpose = (item.purpose or {}).get(language)
    return _Line(
        number=number,
        what=wording.category_words(item.data_category, language),
        why=purpose.rstrip(". ") if purpose else wording.use_words(item.data_use, language),
        needed=item.legal_basis is LegalBasis.PROGRAMME,
        controllers=wording.join(list(item.controllers), language),
        channels=wording.join(
            [wording.channel_words(c, language) for c in item.channels], language
        ),
        territories=wording.join(
            [wording.territory_words(t, language) for t in item.territories], language
        ),
        duration=(
            wording.duration_words(item.max_days, language) if item.max_days is not None else None
        ),
        category=item.data_category,
        use=item.data_use,
    )


def render_text(
    *,
    campaign_name: str,
    market: str,
    version: int,
    items: Sequence[DeclarationItem],
    language: NoticeLanguage,
) -> str:
    """The notice's text: NFC-normalised, ``\\n`` line ends, French spacing before : ; ? !"""
    lines = [_line(number, item, language) for number, item in enumerate(items, start=1)]
    controllers: list[str] = []
    for item in items:
        controllers.extend(name for name in item.controllers if name not in controllers)
    text = (
        _environment()
        .get_template(f"notice.{language.value}.txt")
        .render(
            campaign=campaign_name,
            version=version,
            controllers=wording.join(controllers, language),
            programme=[line for line in lines if line.needed],
            optional=[line for line in lines if not line.needed],
            items=lines,
            authority=wording.authority_words(market, language),
        )
    )
    if language is NoticeLanguage.FR:
        text = _FRENCH_SPACE.sub("\u00a0\\1", text)
    return unicodedata.normalize("NFC", text)


def render(
    *,
    campaign_name: str,
    market: str,
    version: int,
    items: Sequence[DeclarationItem],
    language: NoticeLanguage,
) -> RenderedNotice:
    content = render_text(
        campaign_name=campaign_name,
        market=market,
        version=version,
        items=items,
        language=language,
    )
    value, formula = score(content, language)
    return RenderedNotice(
        language=language,
        content=content,
        sha256=content_hash(content),
        readability_score=value,
        readability_formula=formula,
    )
