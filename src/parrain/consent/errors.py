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


class ConsentItemNotFound(NotFound):
    """The campaign's latest declaration has no item with this data category and use."""

    code = "consent_item_not_found"


class ChannelNotDeclared(InvalidInput):
    """The item is declared, but not for this channel."""

    code = "channel_not_declared"


class ProgrammeUseNotOptional(Conflict):
    """A programme item (needed to run the programme) is not asked for: it cannot be granted,
    refused or withdrawn, and the reward never depends on an optional one."""

    code = "programme_use_not_optional"


class NoticeNotShown(Conflict):
    """A grant needs proof of what the member saw: this notice was not shown to them first."""

    code = "notice_not_shown"


class ConsentNotGranted(Conflict):
    """Only a consent currently granted can be withdrawn."""

    code = "consent_not_granted"


class ConsentAlreadyGranted(Conflict):
    """A consent currently granted is taken back by a withdrawal, not a refusal (so that the
    takedown message and the receipt follow)."""

    code = "consent_already_granted"


class ConsentMemberErased(Conflict):
    """The member was erased: nothing more is recorded about them."""

    code = "member_erased"


class ConsentItemOpenEnded(Conflict):
    """The item declares no maximum duration: parrain records no open-ended consent."""

    code = "consent_open_ended"
