"""fideslang's default taxonomy, read from the installed package, never copied: which data
category and data use keys exist, and which are deprecated. Pure; loaded on first use (the
package takes a few tenths of a second to import, which commands that never look need not pay).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

TaxonomyKind = Literal["data_category", "data_use"]


@dataclass(frozen=True, slots=True)
class TaxonomyEntry:
    key: str
    name: str
    deprecated_since: str | None
    replaced_by: str | None


@functools.cache
def _entries() -> dict[TaxonomyKind, dict[str, TaxonomyEntry]]:
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY
    from fideslang.models import DataCategory, DataUse

    def index(items: Sequence[DataCategory | DataUse]) -> dict[str, TaxonomyEntry]:
        return {
            str(item.fides_key): TaxonomyEntry(
                key=str(item.fides_key),
                name=item.name or str(item.fides_key),
                deprecated_since=item.version_deprecated,
                replaced_by=item.replaced_by,
            )
            for item in items
        }

    return {
        "data_category": index(list(DEFAULT_TAXONOMY.data_category)),
        "data_use": index(list(DEFAULT_TAXONOMY.data_use)),
    }


def entries(kind: TaxonomyKind) -> Mapping[str, TaxonomyEntry]:
    """Every key of ``kind`` in fideslang's default taxonomy, deprecated ones included."""
    return _entries()[kind]


def find(kind: TaxonomyKind, key: str) -> TaxonomyEntry | None:
    return _entries()[kind].get(key)


def problem_with(kind: TaxonomyKind, key: str) -> str | None:
    """Why ``key`` cannot be declared as a ``kind`` (unknown or deprecated), or ``None``."""
    label = "data category" if kind == "data_category" else "data use"
    entry = find(kind, key)
    if entry is None:
        return f"{key!r} is not a {label} of fideslang's default taxonomy"
    if entry.deprecated_since is not None:
        instead = f": use {entry.replaced_by!r}" if entry.replaced_by else ""
        return (
            f"{key!r} is a deprecated {label} (since fideslang {entry.deprecated_since}){instead}"
        )
    return None


def is_within(key: str, ancestor: str) -> bool:
    """True when ``key`` is ``ancestor`` or one of its descendants (dotted fideslang keys)."""
    return key == ancestor or key.startswith(ancestor + ".")


def lineage(key: str) -> Iterator[str]:
    """``key`` and then each of its ancestors: ``a.b.c``, ``a.b``, ``a``."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        yield ".".join(parts[:end])
