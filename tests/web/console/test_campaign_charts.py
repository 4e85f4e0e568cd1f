"""The campaign page's charts: the funnel and the budget burn-down, as inline SVG with
their numbers as tables."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from parrain.operators.roles import Role
from tests.referrals.programme import Programme
from tests.web.console.helpers import draft_campaign, signed_in_as


def rows(section: str) -> list[list[str]]:
    """The cells of each body row of the first table in ``section``, tags removed."""
    body = section.split("<tbody>")[1].split("</tbody>")[0]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)
        ]
        for row in body.split("</tr>")
        if "<t" in row
    ]


def section(page: str, heading_id: str) -> str:
    return page.split(f'id="{heading_id}"')[1].split("</section>")[0]


def test_the_funnel_and_the_burn_down_follow_the_programme(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    programme = Programme.launch(database, clock, budget_minor=50_000)
    enrolment = programme.enrol("ann")
    clock.advance(timedelta(minutes=5))
    programme.invite_many(
        enrolment, [f"friend-{n}" for n in range(programme.campaign.friends_needed)]
    )
    clock.advance(timedelta(minutes=5))
    programme.click(enrolment.code, "a-device-that-never-installs")
    funnel = programme.funnel()
    budget = programme.budget()
    assert funnel.rewarded == 1
    assert budget["available"] < 50_000  # a prize is held

    page = client.get(f"/console/campaigns/{programme.campaign.id}").text
    shown = section(page, "funnel")
    assert '<svg role="img" aria-label="Funnel"' in shown
    assert "<script" not in shown
    assert rows(shown) == [
        ["Clicks", str(funnel.clicks)],
        ["Installs", str(funnel.installs)],
        ["Signups", str(funnel.signups)],
        ["Friends who count", str(funnel.qualified)],
        ["Members rewarded", "1"],
    ]
    assert funnel.clicks == programme.campaign.friends_needed + 1

    burn = section(page, "burn-down")
    assert '<svg role="img" aria-label="Prize budget left over time"' in burn
    left = [cells[1] for cells in rows(burn)]
    assert left[0] == "£500.00"  # funded
    assert left[-1] == Money(budget["available"], "GBP").format("en_GB")  # after the prize hold


def test_an_unfunded_draft_has_no_burn_down_yet(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.FINANCE)
    draft = draft_campaign(database, clock, funded=False)
    page = client.get(f"/console/campaigns/{draft.id}").text
    assert "The budget has not been funded yet." in section(page, "burn-down")
    assert rows(section(page, "funnel"))[0] == ["Clicks", "0"]


def test_the_charts_in_french(client: TestClient, database: Database, clock: FrozenClock) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    draft = draft_campaign(database, clock)
    page = client.get(f"/console/campaigns/{draft.id}?lang=fr").text
    assert 'aria-label="Entonnoir"' in page
    assert 'aria-label="Budget des prix restant au fil du temps"' in page
    assert ["Clics", "0"] in rows(section(page, "funnel"))
