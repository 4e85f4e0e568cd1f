"""Every member page and every console page in French (``?lang=fr``): the page says it is in
French, its heading is French, and axe-core finds no serious or critical violation."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import enter_as_member
from tests.consent import consents
from tests.consent.declarations import ACTOR, clause_of_the_case
from tests.consent.declarations import draft_campaign as funded_draft
from tests.operators.helpers import PASSWORD, create_operator
from tests.referrals.programme import friend_names


def _in_french(page: Page, server: LiveServer, path: str, heading: str) -> None:
    separator = "&" if "?" in path else "?"
    page.goto(server.url(f"{path}{separator}lang=fr"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_contain_text(heading)
    assert_accessible(page)


def test_every_member_page_in_french(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    ann = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    programme.invite_many(ann, friend_names("ann-friend", 5))  # a prize, held
    consents.show(database, clock, ann.member_id, programme.campaign.id, language="fr")
    consents.grant(database, clock, ann.member_id, programme.campaign.id, language="fr")

    _in_french(page, live_server, "/m", "Ouvrez cette page depuis l'application")
    _in_french(page, live_server, "/m/enter?token=not-a-token", "Ce lien ne fonctionne plus")
    _in_french(page, live_server, f"/r/{ann.code}", "ann vous invite")
    enter_as_member(page, live_server, clock, "zoe", lang="fr")
    expect(page.locator("h1")).to_have_text("Rejoindre Cash Rewards")
    assert_accessible(page)

    enter_as_member(page, live_server, clock, "ann", lang="fr")
    expect(page.locator("h1")).to_have_text("Votre progression")
    expect(page.get_by_text("5 sur 5 amis pour l'instant")).to_be_visible()
    assert_accessible(page)
    _in_french(page, live_server, "/m/data", "Mes données")
    _in_french(page, live_server, "/m/data/erase", "Effacer mes données")
    _in_french(page, live_server, "/m/consent", "Vos choix")
    expect(page.get_by_role("switch", checked=True)).to_have_count(1)


def test_every_console_page_in_french(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    member_id = programme.enrol("ann").member_id
    shown = consents.show(database, clock, member_id, programme.campaign.id).notice
    consents.grant(database, clock, member_id, programme.campaign.id)
    draft = funded_draft(database, clock)
    database.run(
        lambda s: consent.declare(
            session=s,
            campaign_id=draft.id,
            declaration_in=clause_of_the_case(),
            actor=ACTOR,
            clock=clock,
        )
    )
    create_operator(database, clock, "root", Role.ADMIN)

    _in_french(page, console_server, "/console/sign-in", "Se connecter à la console")
    page.locator("#username").fill("root")
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/console/sign-in'] button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Campagnes")
    assert_accessible(page)

    live = f"/console/campaigns/{programme.campaign.id}"
    _in_french(page, console_server, live, programme.campaign.name)
    expect(page.locator("h1 .state")).to_have_text("En cours")
    _in_french(page, console_server, f"/console/campaigns/{draft.id}", draft.name)
    expect(page.locator("#gate")).to_have_text("Contrôle de lancement")
    _in_french(page, console_server, "/console/campaigns/new", "Nouvelle campagne")
    # The form sent empty comes back with its errors, in French.
    page.locator("form[action='/console/campaigns/new'] button[type=submit]").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert_accessible(page)
    _in_french(page, console_server, f"/console/campaigns/{draft.id}/edit", draft.name)

    _in_french(page, console_server, "/console/audit", "Chaîne d'audit")
    expect(page.locator("#verification")).to_contain_text("La chaîne est intacte.")
    _in_french(page, console_server, "/console/audit/notices", "Notices")
    _in_french(
        page,
        console_server,
        f"/console/audit/notices/{shown.declaration_id}/fr",
        "Notice, version",
    )
    _in_french(page, console_server, f"/console/audit/consent?member={member_id}", "Registres de")
