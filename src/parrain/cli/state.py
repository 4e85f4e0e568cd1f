"""What every command shares: the settings, the actor, the clock and the database, opened
on first use so that ``--help`` never connects; and finding a campaign by id or name."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import CampaignNotFound
from parrain.campaigns.schemas import CampaignRead
from parrain.config import DatabaseSettings, Settings
from parrain.db.session import Database
from parrain.errors import InvalidInput
from parrain.kit.clock import Clock, SystemClock
from parrain.members.service import MemberKeys


def open_database(settings: DatabaseSettings) -> Database:
    try:
        return Database(settings)
    except (ArgumentError, ValueError) as error:
        raise InvalidInput(f"--database-url: {error}", field="database_url") from None


def safe_url(url: str) -> str:
    """The database URL without its password, fit to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable url>"


@dataclass
class CliState:
    settings: Settings
    actor: str
    clock: Clock = field(default_factory=SystemClock)
    _database: Database | None = None
    _member_keys: MemberKeys | None = None

    @property
    def member_keys(self) -> MemberKeys:
        """The keys of personal data, from the settings (``KeysNotConfigured`` if none)."""
        if self._member_keys is None:
            self._member_keys = MemberKeys.from_settings(self.settings.crypto)
        return self._member_keys

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = open_database(self.settings.database)
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_object(CliState)
    if state is None:
        raise RuntimeError("the parrain callback did not run before this command")
    return state


def resolve_campaign(session: Session, reference: str) -> CampaignRead:
    """The campaign whose id or exact name is ``reference``."""
    text = reference.strip()
    try:
        campaign_id = UUID(text)
    except ValueError:
        pass
    else:
        try:
            return campaigns.get(session=session, campaign_id=campaign_id)
        except CampaignNotFound:
            pass  # a campaign may be named like an id: try the name too
    found = campaigns.find_by_name(session=session, name=reference)
    if found is None:
        raise CampaignNotFound(f"no campaign has the id or name {reference!r}", campaign=reference)
    return found


def campaign_locale(campaign: CampaignRead) -> str:
    """The locale the campaign's amounts are shown in (``en_GB``, ``fr_FR``)."""
    return campaign.locale
