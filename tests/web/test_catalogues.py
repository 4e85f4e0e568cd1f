"""Every message of the pages has a French translation, with the same placeholders.

Messages are extracted the way Babel extracts them (``pybabel extract``): from every template
under ``web/templates/`` and every Python file under ``web/``, with the standard keywords
(``_``, ``gettext``, ``ngettext``...). A message used but missing from the French catalogues
(or marked fuzzy, or translated with other placeholders) fails here: the French page would
show English, or break.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from jinja2.ext import babel_extract

from parrain.web.templating import TEMPLATES, WEB, catalogue

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")

Message = tuple[str, str | tuple[str, str]]


def _extracted(path: Path, method: object) -> Iterator[Message]:
    with path.open("rb") as handle:
        for found in extract(
            method,  # type: ignore[arg-type]
            handle,
            keywords=DEFAULT_KEYWORDS,
            options={"trim_blocks": "true", "lstrip_blocks": "true"},
        ):
            message = found[1]
            where = f"{path.relative_to(WEB)}:{found[0]}"
            if isinstance(message, tuple):
                yield where, (message[0], message[1])
            else:
                yield where, message


def used_messages() -> list[Message]:
    found = [
        entry
        for template in sorted(TEMPLATES.rglob("*.html"))
        for entry in _extracted(template, babel_extract)
    ]
    found += [
        entry for source in sorted(WEB.rglob("*.py")) for entry in _extracted(source, "python")
    ]
    return found


def test_the_pages_use_translatable_messages() -> None:
    # A sanity check of the extraction itself: the layout's own messages are found.
    ids = {message for _, message in used_messages()}
    assert "Skip to content" in ids
    assert "Page not found" in ids


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def french() -> Catalog:
    return catalogue("fr")


def test_every_message_has_a_french_translation(french: Catalog) -> None:
    missing, broken = [], []
    for where, message in used_messages():
        key = message[0] if isinstance(message, tuple) else message
        translated = french.get(key)
        if translated is None or not translated.string:
            missing.append(f"{where}: {key!r}")
            continue
        strings = (
            translated.string if isinstance(translated.string, tuple) else (translated.string,)
        )
        sources = message if isinstance(message, tuple) else (message,)
        expected = set().union(*(_placeholders(text) for text in sources))
        for text in strings:
            if _placeholders(text) != expected:
                broken.append(f"{where}: {key!r} → {text!r}")
    assert not missing, "no French translation:\n" + "\n".join(missing)
    assert not broken, "placeholders differ:\n" + "\n".join(broken)


def test_a_catalogue_entry_nobody_uses_is_reported(french: Catalog) -> None:
    used = {message[0] if isinstance(message, tuple) else message for _, message in used_messages()}
    keys = (entry.id[0] if isinstance(entry.id, tuple) else entry.id for entry in french)
    unused = sorted(key for key in keys if key and key not in used)
    assert not unused, "translated but used nowhere (remove or use):\n" + "\n".join(unused)
