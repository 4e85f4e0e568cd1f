"""Attribution: which sponsorship code earns a conversion. Pure and deterministic; no database.

A :class:`Touch` is a click on a sponsorship link. A :class:`Conversion` is the friend's step
that a campaign credits (an install, a signup); it may carry the touch named by a deferred
deep-link token (minted at the click, handed back by the app after the install) and a code,
either carried by that token or typed in by the friend. An :class:`AttributionRule` is the
campaign's: a model (``first_click`` or ``last_click``) and a window. The rules, in order:

1. **The window.** A touch counts only if it happened at or before the conversion and no
   more than ``window`` before it: ``conversion.at - window <= touch.at <= conversion.at``,
   both ends inclusive (a touch exactly seven days before is "within seven days").
2. **The token wins outright.** If the conversion names a touch (``token_touch_id``) and that
   touch counts, it wins whatever the model: the token came from that very click and
   survived the install, the strongest evidence there is. Reason ``deep_link_token``.
3. **Otherwise the device, and a typed code.** The candidates are the counting touches of the
   converting device (same ``device_id``; a missing device id matches nothing) and, when the
   friend typed a code (``code`` set without a token), that code as a touch at the
   conversion time. ``first_click`` picks the earliest candidate, ``last_click`` the latest;
   the reason is the model's name, or ``typed_code`` when the typed code wins.
4. **Ties.** Candidates are ordered by time, then a typed code after the clicks of the same
   instant, then ``touch_id``, then the remaining fields; ``first_click`` takes the first,
   ``last_click`` the last. The order is total, so the result never depends on the order of
   the input, even if an id repeats.
5. **Nothing counts:** no attribution (``None``).

A token whose touch does not count (outside the window, after the conversion, or unknown)
earns nothing itself, and the code it carried is not counted as typed: an expired click must
not come back as a typed code. Device touches still count then.

Times must be timezone-aware (they are stored in UTC); codes are canonical (read typed ones
with :func:`~parrain.referrals.codes.parse_code` first).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from parrain.referrals.codes import SponsorshipCode
from parrain.referrals.errors import InvalidAttributionRule, InvalidReferralEvent, NaiveTimestamp

AttributionModel = Literal["first_click", "last_click"]
MODELS: tuple[AttributionModel, ...] = ("first_click", "last_click")


class AttributionReason(enum.StrEnum):
    DEEP_LINK_TOKEN = "deep_link_token"  # noqa: S105 (a reason code, not a secret)
    FIRST_CLICK = "first_click"
    LAST_CLICK = "last_click"
    TYPED_CODE = "typed_code"


@dataclass(frozen=True, slots=True, kw_only=True)
class Touch:
    """A click on a sponsorship link; ``at`` is stored in UTC."""

    at: datetime
    code: str
    device_id: str | None
    touch_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "a touch time"))
        SponsorshipCode(self.code)
        _require_id(self.touch_id, "touch_id")
        if self.device_id is not None:
            _require_id(self.device_id, "device_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversion:
    """The step to credit. ``code`` with ``token_touch_id`` is what the token carried;
    ``code`` alone was typed in (or came from a token that named no touch)."""

    at: datetime
    device_id: str | None = None
    code: str | None = None
    token_touch_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _utc(self.at, "a conversion time"))
        if self.code is not None:
            SponsorshipCode(self.code)
        if self.device_id is not None:
            _require_id(self.device_id, "device_id")
        if self.token_touch_id is not None:
            _require_id(self.token_touch_id, "token_touch_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributionRule:
    model: AttributionModel
    window: timedelta

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise InvalidAttributionRule(
                f"the attribution model is one of {', '.join(MODELS)}, not {self.model!r}",
                field="model",
            )
        if not isinstance(self.window, timedelta) or self.window <= timedelta(0):
            raise InvalidAttributionRule(
                "the attribution window must be a positive duration", field="window"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    """The code credited, why, and the touch that won (``None`` for a typed code)."""

    code: str
    reason: AttributionReason
    touch_id: str | None
    touched_at: datetime


# (time, typed code after clicks, touch id, code, device id): a total order on candidates.
_Key = tuple[datetime, int, str, str, str]


def attribute(
    rule: AttributionRule, *, touches: Sequence[Touch], conversion: Conversion
) -> Attribution | None:
    """Credit ``conversion`` to one touch by the rules of the module doc, or to nothing.

    ``touches`` are the ones the caller knows might count: the converting device's and the
    one the token names; any other is ignored.
    """
    counting = [touch for touch in touches if _counts(touch, conversion, rule.window)]
    take_last = rule.model == "last_click"

    if conversion.token_touch_id is not None:
        named = sorted(
            (touch for touch in counting if touch.touch_id == conversion.token_touch_id),
            key=_key,
        )
        if named:
            winner = named[-1] if take_last else named[0]
            return Attribution(
                code=winner.code,
                reason=AttributionReason.DEEP_LINK_TOKEN,
                touch_id=winner.touch_id,
                touched_at=winner.at,
            )

    model_reason = AttributionReason(rule.model)
    candidates: list[tuple[_Key, Attribution]] = [
        (
            _key(touch),
            Attribution(
                code=touch.code, reason=model_reason, touch_id=touch.touch_id, touched_at=touch.at
            ),
        )
        for touch in counting
        if conversion.device_id is not None and touch.device_id == conversion.device_id
    ]
    if conversion.code is not None and conversion.token_touch_id is None:
        typed = Attribution(
            code=conversion.code,
            reason=AttributionReason.TYPED_CODE,
            touch_id=None,
            touched_at=conversion.at,
        )
        candidates.append(((conversion.at, 1, "", conversion.code, ""), typed))
    if not candidates:
        return None
    candidates.sort(key=lambda candidate: candidate[0])
    return candidates[-1][1] if take_last else candidates[0][1]


def _counts(touch: Touch, conversion: Conversion, window: timedelta) -> bool:
    # A difference of two times, not ``conversion.at - window``: no overflow for any window.
    return timedelta(0) <= conversion.at - touch.at <= window


def _key(touch: Touch) -> _Key:
    return (touch.at, 0, touch.touch_id, touch.code, touch.device_id or "")


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise NaiveTimestamp(f"{what} must be a timezone-aware date and time", value=str(moment))
    return moment.astimezone(UTC)


def _require_id(value: str, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidReferralEvent(f"{name} must be a non-empty string", field=name)
