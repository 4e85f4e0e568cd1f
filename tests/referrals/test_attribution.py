"""Attribution: which code earns a conversion, by the campaign's first- or last-click rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parrain.referrals.attribution import (
    MODELS,
    Attribution,
    AttributionModel,
    AttributionReason,
    AttributionRule,
    Conversion,
    Touch,
    attribute,
)
from parrain.referrals.errors import (
    InvalidAttributionRule,
    InvalidCodeCharacter,
    InvalidCodeCheck,
    InvalidReferralEvent,
    NaiveTimestamp,
)

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL = "7K3M9XQ2D", "MEMBER42P", "AM1S2026S"
WEEK = timedelta(days=7)
FIRST = AttributionRule(model="first_click", window=WEEK)
LAST = AttributionRule(model="last_click", window=WEEK)
MICRO = timedelta(microseconds=1)


def touch(touch_id: str, code: str, *, ago: timedelta, device_id: str | None = "phone-1") -> Touch:
    return Touch(at=T0 - ago, code=code, device_id=device_id, touch_id=touch_id)


def on_phone(**fields: str) -> Conversion:
    return Conversion(at=T0, device_id="phone-1", **fields)


TWO_CLICKS = [
    touch("t-alice", ALICE, ago=timedelta(days=3)),
    touch("t-bob", BOB, ago=timedelta(days=1)),
]


def test_first_click_credits_the_earliest_and_last_click_the_latest() -> None:
    assert attribute(FIRST, touches=TWO_CLICKS, conversion=on_phone()) == Attribution(
        code=ALICE,
        reason=AttributionReason.FIRST_CLICK,
        touch_id="t-alice",
        touched_at=T0 - timedelta(days=3),
    )
    assert attribute(LAST, touches=TWO_CLICKS, conversion=on_phone()) == Attribution(
        code=BOB,
        reason=AttributionReason.LAST_CLICK,
        touch_id="t-bob",
        touched_at=T0 - timedelta(days=1),
    )


@pytest.mark.parametrize("rule", [FIRST, LAST])
def test_a_touch_exactly_one_window_before_counts(rule: AttributionRule) -> None:
    edge = [touch("t-edge", ALICE, ago=WEEK)]
    result = attribute(rule, touches=edge, conversion=on_phone())
    assert result is not None
    assert result.touch_id == "t-edge"
    assert result.touched_at == T0 - WEEK


@pytest.mark.parametrize("rule", [FIRST, LAST])
def test_a_touch_a_microsecond_before_the_window_does_not(rule: AttributionRule) -> None:
    outside = [touch("t-old", ALICE, ago=WEEK + MICRO)]
    assert attribute(rule, touches=outside, conversion=on_phone()) is None


def test_first_click_skips_what_fell_out_of_the_window() -> None:
    touches = [touch("t-old", ALICE, ago=WEEK + MICRO), touch("t-new", BOB, ago=WEEK)]
    result = attribute(FIRST, touches=touches, conversion=on_phone())
    assert result is not None
    assert result.code == BOB


def test_a_touch_at_the_conversion_instant_counts() -> None:
    result = attribute(
        LAST, touches=[touch("t-now", ALICE, ago=timedelta(0))], conversion=on_phone()
    )
    assert result is not None
    assert result.touch_id == "t-now"


def test_touches_after_the_conversion_are_ignored() -> None:
    later = [
        touch("t-later", BOB, ago=-MICRO),
        touch("t-much-later", CAROL, ago=-timedelta(hours=1)),
    ]
    assert attribute(LAST, touches=later, conversion=on_phone()) is None
    result = attribute(LAST, touches=[*TWO_CLICKS, *later], conversion=on_phone())
    assert result is not None
    assert result.code == BOB
    assert result.touch_id == "t-bob"


@pytest.mark.parametrize("rule", [FIRST, LAST])
def test_the_deep_link_token_wins_outright(rule: AttributionRule) -> None:
    # The install came through Carol's link on a desktop; the phone also clicked others.
    carols = touch("t-carol", CAROL, ago=timedelta(days=2), device_id=None)
    conversion = on_phone(token_touch_id="t-carol", code=CAROL)
    assert attribute(rule, touches=[*TWO_CLICKS, carols], conversion=conversion) == Attribution(
        code=CAROL,
        reason=AttributionReason.DEEP_LINK_TOKEN,
        touch_id="t-carol",
        touched_at=T0 - timedelta(days=2),
    )


def test_a_token_outside_the_window_falls_back_to_the_device() -> None:
    carols = touch("t-carol", CAROL, ago=WEEK + MICRO, device_id="laptop")
    conversion = on_phone(token_touch_id="t-carol", code=CAROL)
    result = attribute(LAST, touches=[*TWO_CLICKS, carols], conversion=conversion)
    assert result is not None
    assert (result.code, result.reason) == (BOB, AttributionReason.LAST_CLICK)


def test_an_expired_token_does_not_come_back_as_a_typed_code() -> None:
    carols = touch("t-carol", CAROL, ago=WEEK + MICRO, device_id="laptop")
    conversion = on_phone(token_touch_id="t-carol", code=CAROL)
    assert attribute(LAST, touches=[carols], conversion=conversion) is None


def test_a_token_touch_after_the_conversion_does_not_count() -> None:
    carols = touch("t-carol", CAROL, ago=-timedelta(seconds=1), device_id="laptop")
    result = attribute(
        FIRST, touches=[*TWO_CLICKS, carols], conversion=on_phone(token_touch_id="t-carol")
    )
    assert result is not None
    assert (result.code, result.reason) == (ALICE, AttributionReason.FIRST_CLICK)


def test_an_unknown_token_falls_back_to_the_device() -> None:
    result = attribute(LAST, touches=TWO_CLICKS, conversion=on_phone(token_touch_id="t-gone"))
    assert result is not None
    assert result.touch_id == "t-bob"


def test_only_the_converting_device_counts_without_a_token() -> None:
    others = [
        touch("t-laptop", CAROL, ago=timedelta(days=5), device_id="laptop"),
        touch("t-unknown", CAROL, ago=timedelta(days=6), device_id=None),
    ]
    result = attribute(FIRST, touches=[*TWO_CLICKS, *others], conversion=on_phone())
    assert result is not None
    assert result.touch_id == "t-alice"
    assert attribute(FIRST, touches=others, conversion=on_phone()) is None


def test_a_conversion_without_a_device_matches_no_touch_by_device() -> None:
    anonymous = [touch("t-anon", ALICE, ago=timedelta(hours=1), device_id=None)]
    assert attribute(LAST, touches=anonymous, conversion=Conversion(at=T0)) is None


def test_a_typed_code_counts_as_a_touch_at_the_conversion() -> None:
    typed = Attribution(
        code=CAROL, reason=AttributionReason.TYPED_CODE, touch_id=None, touched_at=T0
    )
    assert attribute(FIRST, touches=[], conversion=on_phone(code=CAROL)) == typed
    assert attribute(LAST, touches=[], conversion=Conversion(at=T0, code=CAROL)) == typed
    # It is the latest touch there is: last click credits it, first click an earlier click.
    assert attribute(LAST, touches=TWO_CLICKS, conversion=on_phone(code=CAROL)) == typed
    result = attribute(FIRST, touches=TWO_CLICKS, conversion=on_phone(code=CAROL))
    assert result is not None
    assert result.code == ALICE


def test_a_typed_code_ranks_after_a_click_of_the_same_instant() -> None:
    now = [touch("t-now", ALICE, ago=timedelta(0))]
    last = attribute(LAST, touches=now, conversion=on_phone(code=CAROL))
    first = attribute(FIRST, touches=now, conversion=on_phone(code=CAROL))
    assert last is not None
    assert first is not None
    assert (last.code, last.reason) == (CAROL, AttributionReason.TYPED_CODE)
    assert (first.code, first.reason) == (ALICE, AttributionReason.FIRST_CLICK)


def test_ties_in_time_go_by_touch_id() -> None:
    same_instant = [
        touch("t-2", BOB, ago=timedelta(hours=2)),
        touch("t-1", ALICE, ago=timedelta(hours=2)),
    ]
    first = attribute(FIRST, touches=same_instant, conversion=on_phone())
    last = attribute(LAST, touches=same_instant, conversion=on_phone())
    assert first is not None
    assert last is not None
    assert (first.touch_id, first.code) == ("t-1", ALICE)
    assert (last.touch_id, last.code) == ("t-2", BOB)


def test_a_repeated_touch_id_still_gives_one_answer() -> None:
    # Events are idempotent by id upstream; should two touches share one anyway, the
    # remaining fields decide, so the input order still does not.
    twins = [
        touch("t-1", BOB, ago=timedelta(hours=2)),
        touch("t-1", ALICE, ago=timedelta(hours=2)),
    ]
    for rule, code in ((FIRST, ALICE), (LAST, BOB)):
        for order in (twins, twins[::-1]):
            result = attribute(rule, touches=order, conversion=on_phone())
            assert result is not None
            assert result.code == code


def test_nothing_in_the_window_attributes_nothing() -> None:
    assert attribute(LAST, touches=[], conversion=on_phone()) is None
    short = AttributionRule(model="last_click", window=timedelta(hours=12))
    assert attribute(short, touches=TWO_CLICKS, conversion=on_phone()) is None


def test_times_in_other_zones_are_kept_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    click = Touch(
        at=datetime(2026, 3, 8, 13, 0, tzinfo=paris), code=ALICE, device_id="d", touch_id="t"
    )
    assert click.at == T0
    assert click.at.tzinfo is UTC
    # One hour ahead in Paris is the same instant: at the window's edge, inclusive.
    conversion = Conversion(at=datetime(2026, 3, 15, 13, 0, tzinfo=paris), device_id="d")
    result = attribute(FIRST, touches=[click], conversion=conversion)
    assert result is not None
    assert result.touched_at == T0


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 3, 8, 12, 0)  # noqa: DTZ001
    with pytest.raises(NaiveTimestamp) as caught:
        Touch(at=naive, code=ALICE, device_id=None, touch_id="t")
    assert caught.value.code == "naive_timestamp"
    assert caught.value.status_code == 422
    with pytest.raises(NaiveTimestamp, match="a conversion time must be a timezone-aware"):
        Conversion(at=naive)


@pytest.mark.parametrize("window", [timedelta(0), -timedelta(days=1)])
def test_the_window_must_be_positive(window: timedelta) -> None:
    with pytest.raises(InvalidAttributionRule) as caught:
        AttributionRule(model="last_click", window=window)
    assert caught.value.code == "invalid_attribution_rule"
    assert caught.value.details == {"field": "window"}


def test_the_model_is_first_or_last_click() -> None:
    assert MODELS == ("first_click", "last_click")
    with pytest.raises(InvalidAttributionRule, match="first_click, last_click"):
        AttributionRule(model="linear", window=WEEK)  # type: ignore[arg-type]


def test_touch_codes_are_canonical_and_ids_non_empty() -> None:
    with pytest.raises(InvalidCodeCharacter):
        Touch(at=T0, code="7k3m-9xq2-d", device_id=None, touch_id="t")
    with pytest.raises(InvalidCodeCheck):
        Conversion(at=T0, code="7K3M9XQ2E")
    with pytest.raises(InvalidReferralEvent) as caught:
        Touch(at=T0, code=ALICE, device_id="d", touch_id="")
    assert caught.value.code == "invalid_referral_event"
    assert caught.value.details == {"field": "touch_id"}
    # An empty device id would make every event without one look like the same device.
    with pytest.raises(InvalidReferralEvent):
        Touch(at=T0, code=ALICE, device_id="", touch_id="t")
    with pytest.raises(InvalidReferralEvent):
        Conversion(at=T0, token_touch_id="")


# Touches are drawn from a small pool of (time, device, id) slots, each with any code, so
# that equal times, shared ids and even repeated ids with different codes happen often.
minutes = st.integers(min_value=-8, max_value=2).map(lambda m: T0 + timedelta(minutes=m))
devices = st.sampled_from([None, "d1", "d2"])
slots = st.tuples(minutes, devices, st.sampled_from(["t1", "t2", "t3"]))


def _touches_from(pool: list[tuple[datetime, str | None, str]]) -> st.SearchStrategy[list[Touch]]:
    return st.lists(
        st.builds(
            lambda slot, code: Touch(at=slot[0], device_id=slot[1], touch_id=slot[2], code=code),
            st.sampled_from(pool),
            st.sampled_from([ALICE, BOB, CAROL]),
        ),
        max_size=8,
    )


touch_lists = st.lists(slots, min_size=1, max_size=6).flatmap(_touches_from)
conversions = st.builds(
    Conversion,
    at=st.just(T0),
    device_id=devices,
    code=st.sampled_from([None, ALICE, CAROL]),
    token_touch_id=st.sampled_from([None, "t1", "t2", "t9"]),
)
rules = st.builds(
    AttributionRule,
    model=st.sampled_from(MODELS),
    window=st.integers(min_value=1, max_value=10).map(lambda m: timedelta(minutes=m)),
)


@given(rules, touch_lists, conversions, st.randoms(use_true_random=False))
def test_the_order_of_the_touches_never_matters(
    rule: AttributionRule, touches: list[Touch], conversion: Conversion, rnd: random.Random
) -> None:
    expected = attribute(rule, touches=touches, conversion=conversion)
    shuffled = list(touches)
    rnd.shuffle(shuffled)
    assert attribute(rule, touches=shuffled, conversion=conversion) == expected
    assert attribute(rule, touches=tuple(reversed(touches)), conversion=conversion) == expected


def _in_window(at: datetime, conversion: Conversion, rule: AttributionRule) -> bool:
    return conversion.at - rule.window <= at <= conversion.at


@given(rules, touch_lists, conversions)
def test_the_winner_follows_the_rules(
    rule: AttributionRule, touches: list[Touch], conversion: Conversion
) -> None:
    result = attribute(rule, touches=touches, conversion=conversion)
    counting = [t for t in touches if _in_window(t.at, conversion, rule)]
    by_token = [t for t in counting if t.touch_id == conversion.token_touch_id]
    on_device = [
        t
        for t in counting
        if conversion.device_id is not None and t.device_id == conversion.device_id
    ]
    typed = conversion.code is not None and conversion.token_touch_id is None
    if result is None:
        assert not by_token
        assert not on_device
        assert not typed
        return
    assert _in_window(result.touched_at, conversion, rule)
    if by_token:
        assert result.reason is AttributionReason.DEEP_LINK_TOKEN
        assert result.touch_id == conversion.token_touch_id
        return
    model: AttributionModel = rule.model
    times = [t.at for t in on_device] + ([conversion.at] if typed else [])
    assert result.touched_at == (min(times) if model == "first_click" else max(times))
    if result.reason is AttributionReason.TYPED_CODE:
        assert typed
        assert (result.code, result.touch_id) == (conversion.code, None)
    else:
        assert result.reason == AttributionReason(model)
        assert any(
            (t.touch_id, t.code, t.at) == (result.touch_id, result.code, result.touched_at)
            for t in on_device
        )
