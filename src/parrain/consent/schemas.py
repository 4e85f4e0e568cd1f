"""Pydantic shapes of data-use declarations, policy reports and notices.

A declaration is stored as the operator wrote it (trimmed): channels, territories and
controllers are plain text here, so that a declaration the policy refuses ("any media",
"worldwide", "Sponsor") can still be recorded, checked and explained. Data categories and
uses must be fideslang keys; the service checks them against the taxonomy.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LegalBasis(enum.StrEnum):
    """Why a use is lawful: needed to run the programme the member joined, or only with the
    member's separate, optional consent."""

    PROGRAMME = "programme"
    CONSENT = "consent"


class Channel(enum.StrEnum):
    """The closed list of places a declared use may show or send data. There is no "any"."""

    APP = "app"
    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    SOCIAL = "social"
    PRINT = "print"
    OUT_OF_HOME = "out_of_home"
    TV = "tv"
    RADIO = "radio"
    PAYMENT_PROVIDER = "payment_provider"


class NoticeLanguage(enum.StrEnum):
    EN = "en"
    FR = "fr"


def _text(value: str) -> str:
    text = value.strip()
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    return text


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


#: A fideslang key as typed; whether the taxonomy knows it is the service's question.
TaxonomyKeyText = Annotated[
    str, Field(max_length=200), AfterValidator(_text), AfterValidator(_non_empty)
]
#: Free text checked by the policy, not here: a blank controller is a finding, not a 422.
Label = Annotated[str, Field(max_length=200), AfterValidator(_text)]
PurposeText = Annotated[
    str, Field(max_length=300), AfterValidator(_text), AfterValidator(_non_empty)
]


class DeclarationItem(BaseModel):
    """One declared use of one kind of data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_category: TaxonomyKeyText = Field(
        description="A fideslang data category, e.g. user.account.username."
    )
    data_use: TaxonomyKeyText = Field(
        description="A fideslang data use, e.g. essential.service.operations."
    )
    legal_basis: LegalBasis = Field(
        description="'programme': needed to run the programme; 'consent': optional, asked "
        "separately, and the reward never depends on it."
    )
    controllers: list[Label] = Field(
        max_length=20, description="Legal names of the companies responsible for this use."
    )
    channels: list[Label] = Field(
        max_length=20,
        description="Where the data is used: " + ", ".join(c.value for c in Channel) + ".",
    )
    territories: list[Label] = Field(
        max_length=300, description="ISO 3166 country codes where the data is used."
    )
    max_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="The longest the data is kept or shown for this use, in days. Required "
        "by the policy: a use without one is perpetual.",
    )
    purpose: dict[NoticeLanguage, PurposeText] | None = Field(
        default=None,
        description="Why, in the member's words, per language (en, fr); replaces the "
        "generic wording of the data use in the notice.",
    )


class DeclarationCreate(BaseModel):
    """A campaign's data-use declaration: what data it uses, why, where, by whom, how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[DeclarationItem] = Field(min_length=1, max_length=50)

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[DeclarationItem]) -> list[DeclarationItem]:
        seen: set[tuple[str, str]] = set()
        for item in items:
            pair = (item.data_category, item.data_use)
            if pair in seen:
                raise ValueError(
                    f"{item.data_category} for {item.data_use} is declared twice: "
                    "merge the two items"
                )
            seen.add(pair)
        return items


ReadabilityFormula = Literal["flesch_reading_ease", "kandel_moles"]


class ReadabilityRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: float = Field(description="Higher is easier; 60 and above reads as plain language.")
    formula: ReadabilityFormula = Field(
        description="flesch_reading_ease (English) or kandel_moles (French, Flesch adapted)."
    )


class NoticeSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    language: NoticeLanguage
    sha256: str = Field(description="SHA-256 of the notice's exact UTF-8 bytes, in hex.")
    readability: ReadabilityRead


class DeclarationRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    campaign_id: UUID
    version: int = Field(description="1 for the first declaration, one more for each change.")
    created_at: datetime
    items: list[DeclarationItem]
    notices: list[NoticeSummary]


class NoticeRead(BaseModel):
    """A rendered notice as it was stored: its text never changes once written."""

    model_config = ConfigDict(frozen=True)

    campaign_id: UUID
    declaration_id: UUID
    version: int
    language: NoticeLanguage
    content: str
    sha256: str
    readability: ReadabilityRead
    rendered_at: datetime


class PolicyFindingRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable code of the problem, e.g. duration_open_ended.")
    message: str = Field(description="What is wrong and what to do, naming the GDPR article.")
    article: str = Field(description="The GDPR article, e.g. Art. 5(1)(e).")
    items: list[int] = Field(description="The declaration items concerned, counted from 1.")


class PolicyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_id: UUID
    version: int | None = Field(description="The declaration version checked; null if none.")
    passes: bool
    findings: list[PolicyFindingRead]


# --- Consent events, the current state, the check --------------------------------------------

#: Which screen and button a member used, e.g. ``switch:ad_photo:on``: ids, not words.
MethodText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        pattern=r"^[A-Za-z0-9:._/@-]+$",
        description="The screen and button the member used, e.g. 'switch:ad_photo:on' "
        "(A-Z a-z 0-9 : . _ / @ -).",
    ),
]
#: An ISO 3166 country code, upper case.
TerritoryText = Annotated[
    str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166 code.")
]


class ConsentAction(enum.StrEnum):
    """What a consent event records."""

    SHOWN = "shown"
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class ConsentStatus(enum.StrEnum):
    """Where one optional item stands for a member: never answered, yes (and soon to run out),
    no, taken back, run out."""

    NOT_ASKED = "not_asked"
    GRANTED = "granted"
    RENEWAL_DUE = "renewal_due"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class CheckReason(enum.StrEnum):
    """Why a check allows or denies: stable codes integrations may rely on."""

    CONSENT_GRANTED = "consent_granted"
    PROGRAMME_USE = "programme_use"
    NO_CONSENT = "no_consent"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    TERRITORY_NOT_COVERED = "territory_not_covered"
    CHANNEL_NOT_COVERED = "channel_not_covered"
    MEMBER_UNKNOWN = "member_unknown"
    MEMBER_ERASED = "member_erased"


class NoticeShownCreate(BaseModel):
    """The member is being shown the campaign's optional consents, in ``language``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: UUID
    language: NoticeLanguage
    method: MethodText


class ConsentChoice(BaseModel):
    """A yes (grant) or a no (refusal) to one optional item, on one channel, as answered on
    the notice of the campaign's latest declaration in ``language``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: UUID
    data_category: TaxonomyKeyText
    data_use: TaxonomyKeyText
    channel: Channel
    language: NoticeLanguage
    method: MethodText


class ConsentWithdrawal(BaseModel):
    """Take back a yes: effective for the very next check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: UUID
    data_category: TaxonomyKeyText
    data_use: TaxonomyKeyText
    channel: Channel
    method: MethodText


class ConsentEventRead(BaseModel):
    """One consent event as recorded (append-only)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    member_id: UUID
    campaign_id: UUID
    declaration_version: int
    data_category: str
    data_use: str
    channel: str
    action: ConsentAction
    notice_sha256: str = Field(description="SHA-256 of the notice text the member was shown.")
    language: NoticeLanguage
    method: str
    occurred_at: datetime
    expires_at: datetime | None = Field(description="For a grant: when it runs out.")


class ReceiptFile(BaseModel):
    """A signed consent receipt as the member keeps it: the readable Kantara claims and the
    compact JWS that proves them (ADR 13). Save it as JSON; ``parrain consent verify-receipt``
    checks it offline."""

    model_config = ConfigDict(frozen=True)

    receipt: dict[str, Any]
    jws: str


class ConsentRecorded(BaseModel):
    """A recorded grant, refusal or withdrawal; grants and withdrawals carry their receipt."""

    model_config = ConfigDict(frozen=True)

    event: ConsentEventRead
    receipt: ReceiptFile | None


class NoticeShown(BaseModel):
    """The notice to display, exactly as stored (its hash is what grants will point at), and
    the ``shown`` events recorded: one per optional item and channel."""

    model_config = ConfigDict(frozen=True)

    notice: NoticeRead
    events: list[ConsentEventRead]


class ConsentStateRead(BaseModel):
    """Where one optional item on one channel stands for the member."""

    model_config = ConfigDict(frozen=True)

    campaign_id: UUID
    data_category: str
    data_use: str
    channel: str
    status: ConsentStatus = Field(
        description="not_asked, granted, renewal_due (granted, running out soon: ask again), "
        "refused, withdrawn or expired (ask again to renew)."
    )
    renewal_due: bool = Field(description="True when the member should be asked again.")
    declaration_version: int | None
    notice_sha256: str | None
    granted_at: datetime | None
    expires_at: datetime | None


class MemberConsentsRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    member_id: UUID
    renewal_days: int = Field(description="renewal_due starts this many days before expiry.")
    items: list[ConsentStateRead]


class ConsentCheck(BaseModel):
    """May this member's data of this category be used for this use, on this channel, in
    this territory, at this time?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: UUID
    data_category: TaxonomyKeyText
    data_use: TaxonomyKeyText
    channel: Channel
    territory: TerritoryText
    at: AwareDatetime | None = Field(
        default=None, description="When the data would be used, with its time zone; default now."
    )


class ConsentCheckBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: list[ConsentCheck] = Field(min_length=1, max_length=1000)


class ConsentDecision(BaseModel):
    """``allow`` or ``deny``, why, and the declaration and notice the answer rests on."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["allow", "deny"]
    reason: CheckReason
    member_id: UUID
    data_category: str
    data_use: str
    channel: str
    territory: str
    at: datetime
    campaign_id: UUID | None = None
    declaration_version: int | None = None
    notice_sha256: str | None = None
    expires_at: datetime | None = None


class ConsentDecisions(BaseModel):
    model_config = ConfigDict(frozen=True)

    results: list[ConsentDecision] = Field(description="In the order of the checks asked.")
