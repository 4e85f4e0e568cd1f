"""The auditor's journey in Chromium: signed in, the audit chain verified on the spot, a
member's consent record resting on a notice hash, and that notice opened with its hash
confirmed against the stored text."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import sign_in
from tests.consent import consents
from tests.operators.helpers import create_operator


def test_an_auditor_verifies_the_chain_and_a_notice(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    member_id = programme.enrol("ann").member_id
    campaign_id = programme.campaign.id
    shown = consents.show(database, clock, member_id, campaign_id).notice
    consents.grant(database, clock, member_id, campaign_id)
    consents.withdraw(database, clock, member_id, campaign_id)
    create_operator(database, clock, "ada", Role.AUDITOR)

    sign_in(page, console_server, "ada", start="/console/audit")
    expect(page.locator("h1")).to_have_text("Audit chain")
    entries = database.read(lambda s: audit.verify_chain(session=s)).entries
    verification = page.locator("#verification")
    expect(verification).to_have_attribute("role", "status")
    expect(verification).to_contain_text("The chain is intact.")
    expect(verification).to_contain_text(f"{entries} entries were verified just now")
    expect(page.get_by_role("cell", name="campaign.launched")).to_have_count(1)
    assert_accessible(page)

    # The member's record: granted then withdrawn, each on the notice they were shown.
    page.get_by_role("link", name="Consent records").click()
    page.get_by_label("Member pseudonym").fill(str(member_id))
    page.get_by_role("button", name="Open the record").click()
    events = page.get_by_role("region", name="Events of member")
    for action in ("granted", "withdrawn"):
        row = events.get_by_role("row").filter(has_text=action)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(shown.sha256[:16])
    assert_accessible(page)

    page.get_by_role("link", name="Notices", exact=True).click()
    expect(page.locator("h1")).to_have_text("Notices")
    row = page.get_by_role("row").filter(has_text=shown.sha256)
    expect(row).to_have_count(1)
    assert_accessible(page)

    row.get_by_role("link", name=shown.language.value.upper()).click()
    expect(page.locator("h1")).to_have_text(
        f"Notice, version {shown.version}, {shown.language.value.upper()}"
    )
    expect(page.get_by_role("status")).to_have_text(
        "The stored text still has the hash recorded when it was written."
    )
    facts = page.locator("dl.facts")
    expect(facts.locator("dd").nth(0)).to_have_text(shown.sha256)
    expect(facts.locator("dd").nth(1)).to_have_text(shown.sha256)
    expect(page.locator("pre.notice-text")).to_have_text(shown.content)
    assert_accessible(page)
