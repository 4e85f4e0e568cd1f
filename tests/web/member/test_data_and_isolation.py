""" "My data": what is held, the export of this member only, erasure after confirmation that
ends the session; one member's session never shows another's data; every form needs the
session's CSRF token; the invitation page says who invites and what the friend gets."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from parrain.payouts import service as payouts
from parrain.referrals import service as referrals
from parrain.web.pages.member.session import COOKIE
from tests.referrals.programme import Programme, friend_names
from tests.web.member.pages import csrf_of, enter, text_of


def test_my_data_shows_what_is_held_in_both_languages(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    programme.invite_many(enrolment, friend_names("ann-friend", 2))
    enter(client, clock, "ann")
    words = text_of(client.get("/m/data"))
    assert "ann@example.org" in words
    assert "ann@paypal.example" in words
    assert "user-ann" in words
    assert programme.campaign.name in words
    assert "Erase my data" in words
    french = text_of(client.get("/m/data?lang=fr"))
    assert "Mes données" in french
    assert "ann@paypal.example" in french
    assert "Tout télécharger (JSON)" in french


def test_the_download_is_this_members_export_and_no_one_elses(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    ann = programme.enrol("ann")
    bob = programme.enrol("bob")
    programme.invite_many(bob, friend_names("bob-friend", 2))
    enter(client, clock, "ann")
    download = client.get("/m/data/export.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["cache-control"] == "no-store"
    export = download.json()
    assert export["format"] == "parrain.member-export/1"
    assert export["member_id"] == str(ann.member_id)
    assert export["personal_data"]["username"] == "ann"
    assert [e["code"] for e in export["enrolments"]] == [ann.code]
    for trace in ("bob", str(bob.member_id), bob.code):
        assert trace not in download.text
    actors = database.read(
        lambda s: [
            (entry.actor, entry.action)
            for entry in audit.list_entries(session=s, subject=f"member:{ann.member_id}")
        ]
    )
    assert (f"member:{ann.member_id}", "member.exported") in actors


def test_a_session_for_one_member_never_shows_anothers_data(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    programme.enrol("ann")
    bob = programme.enrol("bob", paypal_receiver="bob@paypal.example")
    enter(client, clock, "ann")
    for path in ("/m", "/m/consent", "/m/data", "/m/data/export.json"):
        shown = html.unescape(client.get(path).text)
        for trace in ("bob@", bob.code, bob.code_display, str(bob.member_id), "user-bob"):
            assert trace not in shown, (path, trace)
    # A member id in the address is not a way in: there is no such address.
    assert client.get(f"/m/{bob.member_id}").status_code == 404


def test_erasure_asks_first_then_crypto_shreds_and_ends_the_session(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    enrolment = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    programme.invite_many(enrolment, friend_names("ann-friend", 5))
    enter(client, clock, "ann")
    confirm = client.get("/m/data/erase")
    words = text_of(confirm)
    assert "What stays" in words
    assert "the ledger" in words
    unconfirmed = client.post("/m/data/erase", data={"csrf_token": csrf_of(confirm)})
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm." in text_of(unconfirmed)
    assert (
        database.read(lambda s: members.get_row(session=s, member_id=enrolment.member_id)).erased_at
        is None
    )

    sealed = client.cookies[COOKIE]
    erased = client.post("/m/data/erase", data={"csrf_token": csrf_of(confirm), "confirm": "yes"})
    assert erased.status_code == 200
    assert "Your data is erased" in text_of(erased)
    assert "under a pseudonymous id" in text_of(erased)
    assert f'{COOKIE}=""' in erased.headers["set-cookie"]
    assert "Max-Age=0" in erased.headers["set-cookie"]
    row = database.read(lambda s: members.get_row(session=s, member_id=enrolment.member_id))
    assert row.erased_at is not None
    assert row.wrapped_key is None
    assert programme.progress(enrolment).reward is not None  # the prize stays
    assert client.get("/m").status_code == 401
    # The old cookie, replayed, opens nothing either: its member is gone.
    client.cookies.set(COOKIE, sealed, path="/m")
    assert client.get("/m/data").status_code == 401
    # And the person, entering again from the app, is a newcomer.
    assert enter(client, clock, "ann").headers["location"] == "/m/enrol"


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/m/enrol", {"username": "ann", "paypal": "ann@paypal.example"}),
        ("/m/consent", {"notice_sha256": "0" * 64}),
        ("/m/consent/withdraw", {"use": "a|b|social"}),
        ("/m/data/erase", {"confirm": "yes"}),
    ],
)
def test_a_form_without_the_sessions_csrf_token_is_refused(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    programme: Programme,
    path: str,
    fields: dict[str, str],
) -> None:
    enrolment = programme.enrol("ann")
    enter(client, clock, "ann")
    missing = client.post(path, data=fields, headers={"Accept": "text/html"})
    assert missing.status_code == 403
    assert "csrf_failed" in missing.text
    wrong = client.post(path, data={**fields, "csrf_token": "forged"})
    assert wrong.status_code == 403
    # A token of another session is worthless in this one.
    other = TestClient(client.app)
    enter(other, clock, "ann")
    foreign = csrf_of(other.get("/m/data/erase"))
    assert client.post(path, data={**fields, "csrf_token": foreign}).status_code == 403
    row = database.read(lambda s: members.get_row(session=s, member_id=enrolment.member_id))
    assert row.erased_at is None


def test_the_invitation_page_says_who_invites_and_what_the_friend_gets(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friend_welcome_minor=500)
    enrolment = programme.enrol("ann", photo_ref="https://img.example/ann.jpg")
    page = client.get(f"/r/{enrolment.code}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    assert page.status_code == 200
    words = text_of(page)
    assert "ann invites you" in words
    assert '<img src="https://img.example/ann.jpg"' in page.text
    assert "welcome reward of £5.00" in words
    deadline = enrolment.deadline_at
    assert f"Sign up by {deadline.day} {deadline:%b %Y}" in words
    assert enrolment.code_display in words
    french = text_of(
        client.get(f"/r/{enrolment.code}?lang=fr", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    )
    assert "ann vous invite" in french
    assert "5,00" in french
    assert "Comment accepter" in french
    # The inviter erased: the invitation still works, without a name.
    database.run(lambda s: members.erase(session=s, member_id=enrolment.member_id, clock=clock))
    anonymous = text_of(
        client.get(f"/r/{enrolment.code}?lang=en", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    )
    assert "You are invited" in anonymous
    assert "ann invites you" not in anonymous
    assert "img.example" not in anonymous


def test_the_reads_added_for_the_pages_return_one_members_rows(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    ann = programme.enrol("ann")
    programme.enrol("bob")
    later = Programme.launch(database, clock)
    ann_again = later.enrol("ann")
    found = database.read(
        lambda s: referrals.enrolments_of_member(
            session=s, member_id=ann.member_id, link_base_url="https://parrain.example"
        )
    )
    assert [e.id for e in found] == [ann.id, ann_again.id]
    assert found[0].link == f"https://parrain.example/r/{ann.code}"
    assert (
        database.read(lambda s: payouts.items_of_member(session=s, member_id=ann.member_id)) == []
    )


def test_every_page_speaks_french_with_the_members_own_data(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    enter(client, clock, "zoe")
    enrol = text_of(client.get("/m/enrol?lang=fr"))
    assert "Invitez 5 amis qui s'inscrivent grâce à votre lien." in enrol
    assert "50,00" in enrol  # the prize, formatted the French way
    assert "Montré aux amis que vous invitez" in enrol
    enrolment = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    client.cookies.clear()
    enter(client, clock, "ann")
    pages = {
        "/m": ["Votre progression", "0 sur 5 amis pour l'instant", enrolment.code_display],
        "/m/consent": ["Vos choix", "Votre récompense n'en dépend pas.", "Utiliser votre photo"],
        "/m/data": ["Mes données", "ann@paypal.example", programme.campaign.name],
        "/m/data/erase": ["Effacer mes données", "Ce qui reste", "Je comprends"],
    }
    for path, expected in pages.items():
        page = client.get(path, params={"lang": "fr"})
        assert page.status_code == 200, path
        assert page.headers["content-language"] == "fr"
        words = text_of(page)
        for text in expected:
            assert text in words, (path, text)
