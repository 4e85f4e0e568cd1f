"""The demo's people: two operators (an admin and an auditor) with fixed demo-only
passwords, the marketplace's events API key, and UK members at different stages of the
programme, each brought there through the same services the API and the worker run.

A member's story happens in the past: it is played with a clock set at its first moment and
moved forward between steps, so that at start-up one prize is still held and another is past
its holding period. Every piece is found again on the next run and left as it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import SecretStr
from sqlalchemy.orm import Session

from parrain.access import service as access
from parrain.access.schemas import ApiKeyCreate, ApiKeyScope
from parrain.campaigns.schemas import CampaignRead
from parrain.cli.commands.demo.campaigns import ADS, PHOTO
from parrain.consent import service as consent
from parrain.consent.schemas import Channel, ConsentChoice, NoticeLanguage, NoticeShownCreate
from parrain.errors import Conflict
from parrain.kit.clock import Clock, FrozenClock
from parrain.members import service as members
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.operators import service as operators
from parrain.operators.roles import Role
from parrain.operators.schemas import OperatorCreate, OperatorRead, SessionKind, SignInPolicy
from parrain.referrals import events, progress
from parrain.referrals import service as referrals
from parrain.referrals.schemas import (
    EnrolmentCreate,
    EnrolmentRead,
    InstallEvent,
    ProgressRead,
    SignupEvent,
)

# --- Operators --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoOperator:
    """A console account of the demo. Its password is printed by every run and written
    here: it is for the demo's made-up data only, never for a real deployment."""

    username: str
    role: Role
    password: str


DEMO_OPERATORS: Final = (
    DemoOperator("admin", Role.ADMIN, "parrain-demo-console-2026"),
    DemoOperator("auditor", Role.AUDITOR, "parrain-demo-regulator-2026"),
)
#: How long the admin's API token, printed by each run, lets a client call the API.
DEMO_TOKEN_LIFETIME: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SeededOperator:
    spec: DemoOperator
    operator: OperatorRead
    created: bool


def seed_operators(*, session: Session, clock: Clock, actor: str) -> list[SeededOperator]:
    """Create the demo's operators unless one of that username exists (left as it is)."""
    out: list[SeededOperator] = []
    for spec in DEMO_OPERATORS:
        found = operators.find_operator(session=session, username=spec.username)
        if found is not None:
            out.append(SeededOperator(spec, found, created=False))
            continue
        created = operators.create_operator(
            session=session,
            operator_in=OperatorCreate(
                username=spec.username, password=SecretStr(spec.password), role=spec.role
            ),
            actor=actor,
            clock=clock,
        )
        out.append(SeededOperator(spec, created, created=True))
    return out


def issue_admin_token(
    *, session: Session, admin: OperatorRead, policy: SignInPolicy, clock: Clock
) -> str:
    """A new management API token of the demo's admin, valid :data:`DEMO_TOKEN_LIFETIME`."""
    started = operators.start_session(
        session=session,
        operator_id=admin.id,
        policy=policy,
        clock=clock,
        kind=SessionKind.API,
        lifetime=DEMO_TOKEN_LIFETIME,
    )
    return started.token


# --- The marketplace's API key ----------------------------------------------------------------

DEMO_KEY_NAME: Final = "demo-marketplace"


def seed_api_key(*, session: Session, clock: Clock, actor: str) -> str | None:
    """Make the demo's events API key unless it exists; its secret when made now (it is
    stored hashed: a later run cannot show it)."""
    if any(key.name == DEMO_KEY_NAME for key in access.list_api_keys(session=session)):
        return None
    created = access.create_api_key(
        session=session,
        key_in=ApiKeyCreate(name=DEMO_KEY_NAME, scopes=[ApiKeyScope.EVENTS]),
        actor=actor,
        clock=clock,
    )
    return created.key


# --- Members ----------------------------------------------------------------------------------

#: When the first friend signs up after the member enrolled, and between two friends.
FIRST_FRIEND_AFTER: Final = timedelta(minutes=30)
BETWEEN_FRIENDS: Final = timedelta(minutes=10)
FRIEND_NAMES: Final = ("noah", "olivia", "priya", "quinn", "ravi")


@dataclass(frozen=True, slots=True)
class DemoMember:
    """A UK member: enrolled ``enrolled_ago`` before the demo's first run, with ``friends``
    friends who clicked their link, installed the app and signed up. ``post_prize`` posts a
    prize whose holding period is over (its coupons issued; the worker then pays the cash);
    ``grants_photo_in_ads`` says yes, on the consents page, to the campaign's optional use in
    the app (they would have their prize all the same)."""

    name: str
    stage: str
    enrolled_ago: timedelta
    friends: int
    post_prize: bool = False
    grants_photo_in_ads: bool = False

    @property
    def marketplace_user_id(self) -> str:
        return f"demo-member-{self.name}"

    def member_in(self) -> MemberCreate:
        return MemberCreate.model_validate(
            {
                "market": "GB",
                "marketplace_user_id": self.marketplace_user_id,
                "email": f"{self.name}@example.org",
                "username": f"{self.name}_demo",
                "paypal_receiver": f"{self.name}.paypal@example.org",
            }
        )


#: In the order their stories begin (each story's records are written in time order).
DEMO_MEMBERS: Final = (
    DemoMember(
        "dan",
        "won, prize posted: coupons, cash paid by the worker",
        enrolled_ago=timedelta(days=9),
        friends=5,
        post_prize=True,
    ),
    DemoMember(
        "cleo",
        "won, prize held; yes to her photo in ads",
        timedelta(days=2),
        friends=5,
        grants_photo_in_ads=True,
    ),
    DemoMember("ben", "2 friends, deadline ahead", timedelta(hours=3), friends=2),
    DemoMember("ann", "just enrolled", timedelta(0), friends=0),
)
#: The member the demo has always printed first (``parrain demo`` since its first version).
FIRST_MEMBER: Final = DEMO_MEMBERS[-1]


@dataclass(frozen=True, slots=True)
class SeededMember:
    spec: DemoMember
    enrolment: EnrolmentRead
    progress: ProgressRead
    created: bool


class DemoFileOutdated(Conflict):
    """The demo file's campaigns start after a seeded member's story would begin: it was
    made by an older ``parrain demo``, whose campaigns started when it first ran."""

    code = "demo_file_outdated"


def _find_enrolment(
    session: Session,
    spec: DemoMember,
    campaign: CampaignRead,
    *,
    keys: MemberKeys,
    link_base_url: str,
) -> EnrolmentRead | None:
    member = members.find_by_marketplace_user(
        session=session, market="GB", marketplace_user_id=spec.marketplace_user_id, keys=keys
    )
    if member is None:
        return None
    return referrals.find_enrolment_of(
        session=session, campaign_id=campaign.id, member_id=member.id, link_base_url=link_base_url
    )


def _invite(
    session: Session,
    spec: DemoMember,
    enrolment: EnrolmentRead,
    index: int,
    *,
    keys: MemberKeys,
    clock: FrozenClock,
) -> None:
    """One friend's path, as the marketplace reports it: a click on the member's link, an
    install carrying the click's deferred deep-link token, a signup."""
    friend = f"{FRIEND_NAMES[index]}-{spec.name}"
    device = f"demo-device-{friend}"
    click = referrals.record_click(
        session=session,
        code_text=enrolment.code,
        device=device,
        user_agent="Mozilla/5.0 (iPhone; demo)",
        keys=keys,
        clock=clock,
    )
    clock.advance(timedelta(minutes=2))
    install = InstallEvent.model_validate(
        {
            "id": f"demo-install-{friend}",
            "type": "install",
            "at": clock.now(),
            "market": "GB",
            "device_id": device,
            "token": click.token,
        }
    )
    events.ingest(session=session, event=install, keys=keys, clock=clock)
    clock.advance(timedelta(minutes=3))
    signup = SignupEvent.model_validate(
        {
            "id": f"demo-signup-{friend}",
            "type": "signup",
            "at": clock.now(),
            "market": "GB",
            "marketplace_user_id": f"demo-friend-{friend}",
            "email": f"{friend}@example.net",
            "username": friend,
            "device_id": device,
            "ip": f"198.51.100.{10 + index}",
            "user_agent": "Mozilla/5.0 (iPhone; demo)",
        }
    )
    events.ingest(session=session, event=signup, keys=keys, clock=clock)


def _grant_photo_in_ads(
    session: Session,
    enrolment: EnrolmentRead,
    *,
    issuer: consent.ReceiptIssuer,
    clock: FrozenClock,
) -> None:
    """The member opens the consents page (its notice shown in English) and says yes to the
    optional use in the app."""
    method = "screen:demo-consents"
    consent.show_notice(
        session=session,
        member_id=enrolment.member_id,
        shown_in=NoticeShownCreate(
            campaign_id=enrolment.campaign_id, language=NoticeLanguage.EN, method=method
        ),
        clock=clock,
    )
    clock.advance(timedelta(minutes=1))
    consent.grant(
        session=session,
        member_id=enrolment.member_id,
        choice=ConsentChoice(
            campaign_id=enrolment.campaign_id,
            data_category=PHOTO,
            data_use=ADS,
            channel=Channel.APP,
            language=NoticeLanguage.EN,
            method=method,
        ),
        issuer=issuer,
        actor=f"member:{enrolment.member_id}",
        clock=clock,
    )


def seed_member(
    *,
    session: Session,
    spec: DemoMember,
    campaign: CampaignRead,
    keys: MemberKeys,
    issuer: consent.ReceiptIssuer,
    clock: Clock,
    link_base_url: str,
) -> SeededMember:
    """Play ``spec``'s story up to ``clock``'s now, unless they are enrolled already (then
    they are left as they are). Run it in one transaction."""
    now = clock.now()
    existing = _find_enrolment(session, spec, campaign, keys=keys, link_base_url=link_base_url)
    enrolment = existing
    if enrolment is None:
        story = FrozenClock(now - spec.enrolled_ago)
        if story.now() < campaign.starts_at:
            raise DemoFileOutdated(
                f"{campaign.name!r} starts too late for the demo's members: this demo file was "
                "made by an older parrain demo; delete it or give another --database",
                campaign=campaign.name,
            )
        enrolment = referrals.enrol(
            session=session,
            campaign_id=campaign.id,
            enrolment_in=EnrolmentCreate(member=spec.member_in()),
            keys=keys,
            clock=story,
            link_base_url=link_base_url,
        )
        story.advance(FIRST_FRIEND_AFTER)
        for index in range(spec.friends):
            _invite(session, spec, enrolment, index, keys=keys, clock=story)
            story.advance(BETWEEN_FRIENDS)
        if spec.grants_photo_in_ads:
            _grant_photo_in_ads(session, enrolment, issuer=issuer, clock=story)
        if spec.post_prize:
            won = referrals.progress(
                session=session, enrolment_id=enrolment.id, clock=clock, link_base_url=link_base_url
            )
            if won.reward is not None:  # the holding job's step, for this prize now
                progress.release_reward(session, won.reward.id, clock=clock)
    return SeededMember(
        spec=spec,
        enrolment=enrolment,
        progress=referrals.progress(
            session=session, enrolment_id=enrolment.id, clock=clock, link_base_url=link_base_url
        ),
        created=existing is None,
    )


def release_date(seeded: SeededMember) -> datetime | None:
    """When a held prize becomes the member's, if theirs is held."""
    reward = seeded.progress.reward
    return reward.release_at if reward is not None and reward.status == "held" else None
