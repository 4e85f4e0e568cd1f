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
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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
