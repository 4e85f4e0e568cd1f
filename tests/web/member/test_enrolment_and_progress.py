"""Enrolment and progress pages: the offer in plain words, the fields the programme needs,
a refusal as a sentence, then friends so far, the deadline, the reward and the link."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from parrain.campaigns import service as campaigns
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from tests.referrals.programme import KEYS, Programme, friend_names
from tests.web.member.pages import csrf_of, enter, text_of


def test_a_newcomer_reads_the_offer_enrols_and_gets_their_link(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enter(client, clock, "zoe")
    page = client.get("/m/enrol")
    assert page.status_code == 200
    words = text_of(page)
    assert "Invite 5 friends who sign up through your link." in words
    assert "within 24 hours of your enrolment" in words
    assert "You then win £50.00: £20.00 paid to your PayPal account and £30.00 in coupons" in words
    assert "held for 7 days" in words
    assert "Shown to the friends you invite" in words
    assert "Sent to PayPal to pay the cash part of your reward" in words

    bad = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "zoe", "paypal": "not-an-email"},
        follow_redirects=False,
    )
    assert bad.status_code == 422
    assert "Enter the email address of your PayPal account." in text_of(bad)
    assert 'value="not-an-email"' in bad.text  # what they typed is kept for them to fix

    enrolled = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "Zoé", "paypal": "zoe@paypal.example"},
        follow_redirects=False,
    )
    assert enrolled.status_code == 303
    assert enrolled.headers["location"] == "/m"
    member = database.read(
        lambda s: members.find_by_marketplace_user(
            session=s, market="GB", marketplace_user_id="user-zoe", keys=KEYS
        )
    )
    assert member is not None
    assert member.username.reveal() == "Zoé"
    assert member.paypal_receiver is not None
    assert member.paypal_receiver.reveal() == "zoe@paypal.example"
    progress = text_of(client.get("/m"))
    assert "0 of 5 friends so far" in progress
    assert "http://127.0.0.1:8000/r/" in progress
    # Enrolled: the enrolment page sends them to their progress.
    assert client.get("/m/enrol", follow_redirects=False).headers["location"] == "/m"


def test_enrolment_refusals_are_sentences(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    enter(client, clock, "zoe")
    page = client.get("/m/enrol")
    programme.pause()
    paused = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "zoe", "paypal": "zoe@paypal.example"},
    )
    assert paused.status_code == 409
    assert "The programme is paused for now: it takes no new members." in text_of(paused)
    programme.resume()
    # Enrolled meanwhile from another tab: the second submission is told so.
    programme.enrol("zoe")
    again = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "zoe", "paypal": "zoe@paypal.example"},
    )
    assert again.status_code == 409
    assert "You are already enrolled in this programme." in text_of(again)
    french = client.post(
        "/m/enrol?lang=fr",
        data={"csrf_token": csrf_of(page), "username": "zoe", "paypal": "zoe@paypal.example"},
    )
    assert "Vous êtes déjà inscrit" in text_of(french)


def test_a_known_member_only_gives_their_paypal_address(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    # Ann signed up as Bob's friend: she is a member already, and now wants her own link.
    programme.invite(programme.enrol("bob"), "ann")
    enter(client, clock, "ann")
    page = client.get("/m/enrol")
    assert 'value="ann"' in page.text
    assert "readonly" in page.text
    assert 'name="paypal" type="email" value=""' in page.text
    enrolled = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "ignored", "paypal": "new@paypal.example"},
        follow_redirects=False,
    )
    assert enrolled.status_code == 303
    member = database.read(
        lambda s: members.find_by_marketplace_user(
            session=s, market="GB", marketplace_user_id="user-ann", keys=KEYS
        )
    )
    assert member is not None
    assert member.username.reveal() == "ann"
    assert member.paypal_receiver is not None
    assert member.paypal_receiver.reveal() == "new@paypal.example"


def test_progress_shows_friends_deadline_reward_and_coupons_in_both_languages(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("ann-friend", 2))
    clock.advance(timedelta(hours=3))
    enter(client, clock, "ann")
    words = text_of(client.get("/m"))
    assert "2 of 5 friends so far" in words
    assert "3 more friends to go." in words
    assert "Time left: 21 hours." in words
    assert enrolment.code_display in words
    assert "Not won yet" in words
    french = text_of(client.get("/m?lang=fr"))
    assert "2 sur 5 amis pour l'instant" in french
    assert "Temps restant : 21 heures." in french.replace("\u202f", " ").replace("\xa0", " ")

    programme.invite_many(enrolment, friend_names("ann-friend", 5)[2:])
    held = text_of(client.get("/m?lang=en"))  # the French choice sticks until changed
    assert "5 of 5 friends so far" in held
    release = (clock.now() + timedelta(days=7)).strftime("%-d %B %Y")
    assert f"Held until {release}" in held
    assert "£20.00 in cash to your PayPal account and £30.00 in coupons" in held

    clock.advance(timedelta(days=8))
    programme.release_due()
    enter(client, clock, "ann")  # a session lasts an hour: the member comes back from the app
    posted = text_of(client.get("/m"))
    assert "Yours: the cash will be sent to your PayPal account in the next payment run." in posted
    assert "Your coupons" in posted
    assert "Ready to use" in posted
    assert "£30.00" in posted
    assert "The deadline has passed." in posted
    french = text_of(client.get("/m?lang=fr"))
    assert "Vos bons d'achat" in french
    assert "30,00" in french


def test_a_paused_programme_says_so_before_asking_anything(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    programme.pause()
    enter(client, clock, "zoe")
    page = client.get("/m/enrol")
    assert "The programme is paused for now" in text_of(page)
    assert 'action="/m/enrol"' not in page.text


def test_a_member_of_an_ended_programme_is_offered_the_new_one(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    old = programme.enrol("ann")
    database.run(
        lambda s: campaigns.end(
            session=s, campaign_id=programme.campaign.id, actor="operator:test", clock=clock
        )
    )
    without_new = enter(client, clock, "ann")
    assert without_new.headers["location"] == "/m"  # their past programme's progress
    assert old.code_display in text_of(client.get("/m"))
    Programme.launch(database, clock)
    assert enter(client, clock, "ann").headers["location"] == "/m/enrol"
    progress = text_of(client.get("/m"))
    assert old.code_display in progress
    assert "A new Cash Rewards programme is open. Join it" in progress
    page = client.get("/m/enrol")
    enrolled = client.post(
        "/m/enrol",
        data={"csrf_token": csrf_of(page), "username": "ann", "paypal": "ann@paypal.example"},
        follow_redirects=False,
    )
    assert enrolled.headers["location"] == "/m"
    now = text_of(client.get("/m"))
    assert old.code_display not in now
    assert "A new Cash Rewards programme is open" not in now
