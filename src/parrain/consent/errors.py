"""Consent errors, each with a stable code."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound


class DeclarationNotFound(NotFound):
    """The campaign has no data-use declaration yet, or not the version asked for."""

    code = "declaration_not_found"


class NoticeNotFound(NotFound):
    code = "notice_not_found"


class UnknownTaxonomyKey(InvalidInput):
    """A data category or data use is not a (current) key of fideslang's default taxonomy;
    ``details["keys"]`` names each one, with its item and field."""

    code = "unknown_taxonomy_key"


class InvalidDeclaration(InvalidInput):
    """A declaration file or body cannot be read as a declaration."""

    code = "invalid_declaration"


class DeclarationLocked(Conflict):
    """An ended campaign's declaration is kept as it was."""

    code = "declaration_locked"


class DeclarationRefused(Conflict):
    """A live campaign's declaration may only be replaced by one that passes the policy;
    ``details["findings"]`` lists why this one does not."""

    code = "declaration_refused"
