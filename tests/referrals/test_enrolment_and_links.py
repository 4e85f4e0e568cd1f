"""Enrolment (and why it is refused), sponsorship codes as people type them, and clicks on a
link: bots filtered, one click per device, unknown and mistyped codes told apart."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from parrain.campaigns import service as campaigns
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.referrals import service
from parrain.referrals.codes import ALPHABET, new_code
from parrain.referrals.errors import (
    AlreadyEnrolled,
    EnrolmentRefused,
    InvalidCode,
    InvalidCodeCheck,
    UnknownCode,
)
from tests.referrals.programme import ACTOR, FR, LINK_BASE, UK, Programme, friend_names

# Enrolment


def _refusal(programme: Programme, name: str, **changes: object) -> EnrolmentRefused:
    with pytest.raises(EnrolmentRefused) as caught:
        programme.enrol(name, **changes)
    return caught.value


def test_enrolment_gives_a_code_a_link_and_a_deadline_24_hours_away(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    assert enrolment.enrolled_at == clock.now()
    assert enrolment.deadline_at == clock.now() + timedelta(hours=24)
    assert enrolment.code_display.replace("-", "") == enrolment.code
    assert len(enrolment.code) == 9
    assert enrolment.link == f"{LINK_BASE}/r/{enrolment.code}"
    assert programme.funnel().enrolments == 1


def test_the_deadline_never_runs_past_the_end_of_the_campaign(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, ends_at=clock.now() + timedelta(hours=10))
    enrolment = programme.enrol("ann")
    assert enrolment.deadline_at == clock.now() + timedelta(hours=10)


def test_enrolment_is_refused_while_the_campaign_is_paused_and_allowed_once_resumed(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    programme.pause()
    refusal = _refusal(programme, "ann")
    assert type(refusal) is EnrolmentRefused
    assert refusal.code == "enrolment_refused"
    assert refusal.details["reason"] == "paused"
    assert "paused" in refusal.message
    programme.resume()
    assert programme.enrol("ann").member_id is not None
    assert programme.funnel().enrolments == 1


def test_enrolment_is_refused_once_the_campaign_has_ended(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    database.run(
        lambda s: campaigns.end(
            session=s, campaign_id=programme.campaign.id, actor=ACTOR, clock=clock
        )
    )
    refusal = _refusal(programme, "ann")
    assert refusal.details["reason"] == "ended"
    assert refusal.message == "this campaign has ended"
    assert programme.funnel().enrolments == 0


def test_enrolment_is_refused_after_the_campaign_window_closes_even_if_still_live(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, ends_at=clock.now() + timedelta(days=2))
    clock.advance(timedelta(days=2))
    assert _refusal(programme, "ann").details["reason"] == "ended"


def test_enrolment_is_refused_to_a_member_of_another_market(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, region=UK)
    refusal = _refusal(programme, "amelie", market=FR["market"])
    assert refusal.details["reason"] == "other_market"
    assert "GB" in refusal.message
    assert "FR" in refusal.message
    assert programme.funnel().enrolments == 0


def test_enrolment_is_refused_when_the_budget_cannot_pay_one_more_prize(
    database: Database, clock: FrozenClock
) -> None:
    # 1.5 prizes: ann's prize is held, then nobody else can enrol.
    programme = Programme.launch(database, clock, budget_minor=7500)
    ann = programme.enrol("ann")
    bob = programme.enrol("bob")  # still one prize available
    programme.invite_many(ann, friend_names("a", 5))
    assert programme.budget() == {"funded": 7500, "held": 5000, "spent": 0, "available": 2500}
    refusal = _refusal(programme, "carol")
    assert refusal.details["reason"] == "out_of_budget"
    assert "budget" in refusal.message
    assert programme.funnel().enrolments == 2
    assert programme.progress(bob).reward is None


def test_a_member_cannot_enrol_twice_in_one_campaign(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    first = programme.enrol("ann")
    with pytest.raises(AlreadyEnrolled) as caught:
        programme.enrol("ann", email="another-address@example.org")
    assert isinstance(caught.value, EnrolmentRefused)
    assert caught.value.code == "already_enrolled"
    assert caught.value.details["reason"] == "already_enrolled"
    assert caught.value.details["enrolment_id"] == str(first.id)
    assert programme.funnel().enrolments == 1


def test_one_member_may_enrol_in_two_campaigns_with_two_codes(
    database: Database, clock: FrozenClock
) -> None:
    first = Programme.launch(database, clock)
    second = Programme.launch(database, clock)
    one, two = first.enrol("ann"), second.enrol("ann")
    assert one.member_id == two.member_id
    assert one.code != two.code


# Codes as people type them


def _spellings(code: str, display: str) -> list[str]:
    return [
        code,
        code.lower(),
        display,
        display.lower(),
        f"  {display.lower().replace('-', ' ')} ",
        display.replace("-", "\u2013"),  # a phone's en dash
        "-".join(code),
    ]


def test_codes_are_found_whatever_their_case_and_hyphens(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    for spelling in _spellings(enrolment.code, enrolment.code_display):
        found = database.read(
            lambda s, text=spelling: service.find_enrolment_by_code(
                session=s, code_text=text, link_base_url=LINK_BASE
            )
        )
        assert found.id == enrolment.id, spelling


def test_a_click_through_any_spelling_of_a_code_is_one_click_of_that_link(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    results = [
        programme.click(spelling, "device-f1")
        for spelling in _spellings(enrolment.code, enrolment.code_display)
    ]
    assert {r.enrolment_id for r in results} == {enrolment.id}
    assert [r.recorded for r in results] == [True] + [False] * (len(results) - 1)
    assert len({r.token for r in results}) == 1
    assert programme.funnel().clicks == 1


def test_a_code_typed_in_lower_case_with_hyphens_at_signup_credits_its_member(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1)
    enrolment = programme.enrol("ann")
    typed = enrolment.code_display.lower()
    outcome = programme.event(programme.signup("f1", "device-f1", code=typed))
    assert outcome.enrolment_id == enrolment.id
    state = programme.progress(enrolment)
    assert state.friends_counted == 1
    assert state.reward is not None
    assert state.reward.status == "held"


# Clicks on a link


@pytest.mark.parametrize(
    "user_agent",
    [
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "facebookexternalhit/1.1",
        "WhatsApp/2.23.20.0",
        "curl/8.5.0",
        "python-requests/2.31",
        "",
    ],
)
def test_bot_clicks_are_not_recorded_and_get_no_token(
    database: Database, clock: FrozenClock, user_agent: str
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    result = programme.click(enrolment.code, "device-bot", user_agent=user_agent)
    assert result.enrolment_id == enrolment.id
    assert result.recorded is False
    assert result.token is None
    assert programme.funnel().clicks == 0


def test_repeated_clicks_from_one_device_count_once_and_keep_one_token(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, landing_url="https://app.example/get?utm_source=parrain"
    )
    enrolment = programme.enrol("ann")
    first = programme.click(enrolment.code, "device-f1")
    clock.advance(timedelta(minutes=5))
    again = programme.click(enrolment.code, "device-f1")
    other = programme.click(enrolment.code, "device-f2")
    assert (first.recorded, again.recorded, other.recorded) == (True, False, True)
    assert first.token is not None
    assert again.token == first.token
    assert other.token not in (None, first.token)
    assert first.redirect_to is not None
    query = parse_qs(urlsplit(first.redirect_to).query)
    assert query == {"utm_source": ["parrain"], "parrain_token": [first.token]}
    assert again.redirect_to == first.redirect_to
    assert programme.funnel().clicks == 2


def test_one_device_clicking_two_members_links_makes_two_clicks(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann, bob = programme.enrol("ann"), programme.enrol("bob")
    to_ann = programme.click(ann.code, "device-f1")
    to_bob = programme.click(bob.code, "device-f1")
    assert to_ann.recorded
    assert to_bob.recorded
    assert to_ann.token != to_bob.token
    assert programme.funnel().clicks == 2


def test_a_well_formed_code_nobody_has_is_an_unknown_code(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    programme.enrol("ann")
    stranger = new_code()
    with pytest.raises(UnknownCode) as caught:
        programme.click(stranger.canonical, "device-f1")
    assert caught.value.code == "unknown_code"
    assert caught.value.details["code"] == stranger.display
    assert caught.value.status_code == 404
    assert programme.funnel().clicks == 0


def _mistyped(code: str) -> str:
    """The code with its second symbol replaced by another one."""
    wrong = next(symbol for symbol in ALPHABET if symbol != code[1])
    return code[0] + wrong + code[2:]


def _swapped(code: str) -> str:
    """The code with its first two different neighbouring symbols swapped."""
    i = next(i for i in range(len(code) - 1) if code[i] != code[i + 1])
    return code[:i] + code[i + 1] + code[i] + code[i + 2 :]


@pytest.mark.parametrize("mistake", [_mistyped, _swapped], ids=["one-symbol", "swap"])
def test_a_mistyped_code_is_an_invalid_code_not_an_unknown_one(
    database: Database, clock: FrozenClock, mistake: object
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    wrong = mistake(enrolment.code)  # type: ignore[operator]
    with pytest.raises(InvalidCode) as caught:
        programme.click(wrong, "device-f1")
    assert isinstance(caught.value, InvalidCodeCheck)
    assert not isinstance(caught.value, UnknownCode)
    assert caught.value.code == "invalid_code_check"
    assert programme.funnel().clicks == 0


@pytest.mark.parametrize("text", ["", "UUUUUUUUU", "abc", "7K3M-9XQ2-D-7K3M-9XQ2-D"])
def test_malformed_codes_are_invalid_codes(
    database: Database, clock: FrozenClock, text: str
) -> None:
    programme = Programme.launch(database, clock)
    programme.enrol("ann")
    with pytest.raises(InvalidCode):
        programme.click(text, "device-f1")
    assert programme.funnel().clicks == 0
