"""Server-rendered pages in the visitor's language.

One Jinja2 environment per language, each with ``jinja2.ext.i18n`` installed over that
language's Babel catalogue, so a template calls ``_("Your friends")`` and gets French or
English. Message ids are the English text: English needs no catalogue. French comes from
every ``.po`` file under ``web/locale/fr/LC_MESSAGES/``, merged and compiled in memory at
start-up (no build step, nothing generated in the repository). A message without a French
translation falls back to the English text; ``tests/web/test_catalogues.py`` makes sure
there is none.

The language is, in order: ``?lang=`` (which also sets the ``parrain_lang`` cookie, so the
choice sticks), that cookie, then the browser's ``Accept-Language``.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Literal, cast

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from parrain.kit.money import Money

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")
LANG_COOKIE = "parrain_lang"
#: The Babel locale each language formats money and dates with.
BABEL_LOCALES: Mapping[Language, str] = {"en": "en_GB", "fr": "fr_FR"}
_LANG_COOKIE_SECONDS = 365 * 24 * 3600
PLURAL_FORMS: Mapping[Language, str] = {
    "en": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
}

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"
LOCALE = WEB / "locale"
STATIC = WEB / "static"


def catalogue(language: Language) -> Catalog:
    """Every ``.po`` file of ``language`` merged into one catalogue (empty for English).

    Fuzzy and untranslated entries are left out: they would show a wrong or empty text.
    Two files translating one message id differently is a mistake and raises.
    """
    merged = Catalog(locale=BABEL_LOCALES[language])
    # French in gettext's classic two forms (one for 0 and 1, the other above), as the
    # catalogues are written; CLDR's third form (for millions) is not used here.
    merged.mime_headers = [("Plural-Forms", PLURAL_FORMS[language])]
    folder = LOCALE / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")) if folder.is_dir() else ():
        with path.open("rb") as handle:
            part = read_po(handle, locale=BABEL_LOCALES[language])
        for message in part:
            if not message.id or message.fuzzy:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(strings):
                continue
            known = merged.get(message.id, message.context)
            if known is not None and known.string != message.string:
                raise ValueError(
                    f"{path.name}: {message.id!r} is translated differently in another catalogue"
                )
            merged.add(message.id, message.string, context=message.context)
    return merged


@cache
def translations(language: Language) -> gettext.NullTranslations:
    """The compiled messages of ``language`` (built once per process)."""
    if language == "en":
        return gettext.NullTranslations()
    compiled = BytesIO()
    write_mo(compiled, catalogue(language))
    compiled.seek(0)
    return Translations(fp=compiled)


def _money(language: Language) -> Any:
    def money(amount_minor: int, currency: str) -> str:
        return Money(amount_minor, currency).format(BABEL_LOCALES[language])

    return money


def _when(language: Language) -> Any:
    def when(moment: datetime | None) -> str:
        if moment is None:
            return ""
        stamp = format_datetime(
            moment.astimezone(UTC), "medium", tzinfo=UTC, locale=BABEL_LOCALES[language]
        )
        return f"{stamp} UTC"

    return when


def _day(language: Language) -> Any:
    def day(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return format_date(moment.astimezone(UTC).date(), "long", locale=BABEL_LOCALES[language])

    return day


def _number(language: Language) -> Any:
    def number(count: int) -> str:
        return format_decimal(count, locale=BABEL_LOCALES[language])

    return number


@cache
def templates(language: Language) -> Jinja2Templates:
    """The templates of one language (built once per process)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "xml")),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Installed by the i18n extension; mypy does not see extension-added attributes.
    cast(Any, environment).install_gettext_translations(translations(language), newstyle=True)
    environment.filters["money"] = _money(language)
    environment.filters["when"] = _when(language)
    environment.filters["day"] = _day(language)
    environment.filters["number"] = _number(language)
    environment.globals["lang"] = language
    environment.globals["languages"] = LANGUAGES
    return Jinja2Templates(env=environment)


def _accepted(header: str | None) -> Language:
    """The first of our languages the browser lists, by its order (q-values are rarely
    other than descending); English when it lists none."""
    for part in (header or "").split(","):
        tag = part.split(";")[0].strip().lower()
        for language in LANGUAGES:
            if tag == language or tag.startswith(language + "-"):
                return language
    return "en"


def locale_of(request: Request) -> Language:
    """The language of this request: ``?lang=``, the cookie, then ``Accept-Language``."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    return _accepted(request.headers.get("accept-language"))


def gettext_for(language: Language) -> Callable[[str], str]:
    """The ``gettext`` of ``language``, for text built in Python (flash messages). Use
    ``%(name)s`` placeholders and format after translating."""
    return translations(language).gettext


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``name`` (a path under ``web/templates/``) rendered in the request's language.

    Pages are not cached by browsers or proxies (``no-store``): most show personal data.
    """
    language = locale_of(request)
    response = templates(language).TemplateResponse(
        request,
        name,
        {"lang": language, **(context or {})},
        status_code=status_code,
        headers=dict(headers or {}),
    )
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Content-Language"] = language
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            language,
            max_age=_LANG_COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
