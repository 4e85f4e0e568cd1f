"""The consent screen: each optional use on its own unticked switch, the short notice first
and the detail one tap away, "Your reward does not depend on this." above the switches; saving
records what was shown and answered, with the notice hash and the button; one tap withdraws,
and the next consent check denies."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.consent import consents
from tests.referrals.programme import Programme, friend_names
from tests.web.member.pages import csrf_of, enter, text_of

PHOTO_IN_ADS = f"{consents.PHOTO}|{consents.ADS}"


def _events(database: Database, member_id: UUID) -> list[tuple[str, str, str, str]]:
    return database.read(
        lambda s: [
            (e.action, e.channel, e.method, e.notice_sha256)
            for e in consent.history(session=s, member_id=member_id)
        ]
    )


def _reward(programme: Programme, enrolment: Any) -> tuple[Any, ...]:
    progress = programme.progress(enrolment)
    assert progress.reward is not None
    reward = progress.reward
    return (
        progress.friends_counted,
        reward.id,
        reward.status,
        reward.cash_minor,
        reward.coupon_minor,
        reward.release_at,
    )


def _hidden(page_text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page_text)
    assert found is not None
    return found.group(1)


def test_the_screen_shows_each_use_unticked_with_the_promise_first(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann")
    enter(client, clock, "ann")
    page = client.get("/m/consent")
    assert page.status_code == 200
    switches = re.findall(r'<input type="checkbox" role="switch"[^>]*>', page.text)
    assert len(switches) == 3  # photo in adverts, on the app, the web and social networks
    assert not any("checked" in switch for switch in switches)
    promise = page.text.index("Your reward does not depend on this.")
    assert promise < page.text.index('role="switch"')
    assert page.text.index("How we use your data, in short") < page.text.index("<details>")
    words = text_of(page)
    assert "IN SHORT" in words
    assert "IN DETAIL" not in words  # the heading is the page's own: "Read the detail"
    assert "Read the detail" in words
    # Showing the screen is recorded: one "shown" per optional use and channel, with its hash.
    notice = database.read(
        lambda s: consent.get_notice(
            session=s,
            campaign_id=programme.campaign.id,
            language=consents.choice(programme.campaign.id).language,
        )
    )
    shown = _events(database, enrolment.member_id)
    assert sorted(shown) == sorted(
        ("shown", channel, "member_pages:consent:shown", notice.sha256)
        for channel in ("app", "social", "web")
    )
    assert _hidden(page.text, "notice_sha256") == notice.sha256
    french = client.get("/m/consent?lang=fr")
    assert "Votre récompense n'en dépend pas." in text_of(french)
    assert "L'ESSENTIEL" in text_of(french)
    assert "EN DÉTAIL" not in text_of(french)


def test_refusing_every_use_leaves_the_reward_exactly_as_it_was(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("ann-friend", 5))
    before = (_reward(programme, enrolment), programme.budget(), programme.balances())
    enter(client, clock, "ann")
    page = client.get("/m/consent")
    saved = client.post(
        "/m/consent",
        data={
            "csrf_token": csrf_of(page),
            "notice_sha256": _hidden(page.text, "notice_sha256"),
            "language": "en",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/m/consent?saved=1"
    refused = [event for event in _events(database, enrolment.member_id) if event[0] != "shown"]
    assert sorted(refused) == sorted(
        ("refused", channel, "member_pages:consent:save:off", _hidden(page.text, "notice_sha256"))
        for channel in ("app", "social", "web")
    )
    after = (_reward(programme, enrolment), programme.budget(), programme.balances())
    assert after == before
    assert "Your choices are saved." in text_of(client.get("/m/consent?saved=1"))
    # Saving again changes nothing: a refusal is not recorded twice.
    client.post(
        "/m/consent",
        data={"csrf_token": csrf_of(page), "notice_sha256": _hidden(page.text, "notice_sha256")},
    )
    answers = [event for event in _events(database, enrolment.member_id) if event[0] != "shown"]
    assert len(answers) == 3
    # The reward is then released and paid the same.
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    assert programme.progress(enrolment).reward.status == "posted"  # type: ignore[union-attr]


def test_granting_then_withdrawing_makes_the_next_check_deny(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann")
    member_id = enrolment.member_id
    enter(client, clock, "ann")
    page = client.get("/m/consent")
    granted = client.post(
        "/m/consent",
        data={
            "csrf_token": csrf_of(page),
            "notice_sha256": _hidden(page.text, "notice_sha256"),
            "language": "en",
            "use": f"{PHOTO_IN_ADS}|social",
        },
        follow_redirects=False,
    )
    assert granted.status_code == 303
    assert consents.check(database, clock, member_id).decision == "allow"
    assert consents.check(database, clock, member_id, channel="app").decision == "deny"
    shown_again = client.get("/m/consent")
    switches = re.findall(r'<input type="checkbox" role="switch"[^>]*>', shown_again.text)
    assert [("checked" in s) for s in switches] == [False, True, False]  # app, social, web
    assert "Take back a yes" in text_of(shown_again)

    withdrawn = client.post(
        "/m/consent/withdraw",
        data={"csrf_token": csrf_of(shown_again), "use": f"{PHOTO_IN_ADS}|social"},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    decision = consents.check(database, clock, member_id)
    assert decision.decision == "deny"
    assert decision.reason == "withdrawn"
    actions = [(a, c, m) for a, c, m, _h in _events(database, member_id) if a != "shown"]
    assert ("granted", "social", "member_pages:consent:save:on") in actions
    assert ("withdrawn", "social", "member_pages:consent:withdraw") in actions
    assert "Withdrawn. We stop this use now." in text_of(client.get(withdrawn.headers["location"]))
    # Tapped twice: nothing more happens, nothing breaks.
    again = client.post(
        "/m/consent/withdraw",
        data={"csrf_token": csrf_of(shown_again), "use": f"{PHOTO_IN_ADS}|social"},
        follow_redirects=False,
    )
    assert again.status_code == 303
    bogus = client.post(
        "/m/consent/withdraw", data={"csrf_token": csrf_of(shown_again), "use": "x|y|moon"}
    )
    assert bogus.status_code == 422


def test_turning_a_granted_switch_off_withdraws_it(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann")
    enter(client, clock, "ann")
    page = client.get("/m/consent")
    form = {"csrf_token": csrf_of(page), "notice_sha256": _hidden(page.text, "notice_sha256")}
    client.post("/m/consent", data={**form, "use": [f"{PHOTO_IN_ADS}|app", f"{PHOTO_IN_ADS}|web"]})
    assert consents.check(database, clock, enrolment.member_id, channel="web").decision == "allow"
    client.post("/m/consent", data={**form, "use": f"{PHOTO_IN_ADS}|app"})
    decision = consents.check(database, clock, enrolment.member_id, channel="web")
    assert (decision.decision, decision.reason) == ("deny", "withdrawn")
    assert consents.check(database, clock, enrolment.member_id, channel="app").decision == "allow"


def test_a_notice_that_changed_meanwhile_is_shown_again_before_any_grant(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    from tests.consent.declarations import honest, photo_in_ads, programme_items

    enrolment = programme.enrol("ann")
    enter(client, clock, "ann")
    page = client.get("/m/consent")
    consents.redeclare(
        programme,
        honest().model_copy(update={"items": [*programme_items("GB"), photo_in_ads(max_days=90)]}),
    )
    answer = client.post(
        "/m/consent",
        data={
            "csrf_token": csrf_of(page),
            "notice_sha256": _hidden(page.text, "notice_sha256"),
            "use": f"{PHOTO_IN_ADS}|social",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/m/consent?saved=changed"
    assert consents.check(database, clock, enrolment.member_id).decision == "deny"
    assert [e for e in _events(database, enrolment.member_id) if e[0] != "shown"] == []
