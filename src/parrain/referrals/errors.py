"""Referral errors, each with a stable code clients rely on (never rename one)."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound


class InvalidCode(InvalidInput):
    """A sponsorship code that cannot be a real one; nothing was looked up to say so."""

    code = "invalid_code"


class InvalidCodeCharacter(InvalidCode):
    """A character outside the code alphabet (U, punctuation, a non-ASCII letter...)."""

    code = "invalid_code_character"


class InvalidCodeLength(InvalidCode):
    """Too few or too many symbols once hyphens and spaces are left out, or far too long."""

    code = "invalid_code_length"


class InvalidCodeCheck(InvalidCode):
    """The check symbol does not match: a symbol was mistyped or two were swapped."""

    code = "invalid_code_check"


class InvalidAttributionRule(InvalidInput):
    code = "invalid_attribution_rule"


class InvalidReferralEvent(InvalidInput):
    """A touch or conversion with an empty id or device id."""

    code = "invalid_referral_event"


class NaiveTimestamp(InvalidInput):
    """A time without a timezone: it cannot be placed on the attribution window."""

    code = "naive_timestamp"


class EnrolmentNotFound(NotFound):
    code = "enrolment_not_found"


class UnknownCode(NotFound):
    """A well-formed sponsorship code that belongs to no enrolment."""

    code = "unknown_code"


class EnrolmentRefused(Conflict):
    """The member cannot enrol; ``details["reason"]`` says why in one word."""

    code = "enrolment_refused"


class AlreadyEnrolled(EnrolmentRefused):
    code = "already_enrolled"


class EventIdReused(Conflict):
    """An event id sent again with a different body: ids are idempotency keys."""

    code = "event_id_reused"


class EventNotFound(NotFound):
    code = "event_not_found"
