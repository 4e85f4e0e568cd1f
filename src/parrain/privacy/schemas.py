"""The shapes of a member's export and of an erasure's answer.

The export is for the person it is about: it holds their personal data in the clear (plain
strings, not masked), so it is never logged and is only ever sent to them or to whoever acts
for them. About other people it holds only pseudonymous ids (the friends a member invited,
the member who invited a friend).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from parrain.audit.schemas import AuditEntryRead, ChainReportRead
from parrain.consent.schemas import (
    ConsentEventRead,
    MemberConsentsRead,
    NoticeLanguage,
    ReadabilityRead,
    ReceiptFile,
)

EXPORT_FORMAT: Literal["parrain.member-export/1"] = "parrain.member-export/1"


class PersonalData(BaseModel):
    """The personal data parrain holds about the person, decrypted for them."""

    marketplace_user_id: str
    email: str
    username: str
    photo_ref: str | None
    paypal_receiver: str | None


class LedgerEntry(BaseModel):
    """One ledger transfer of a prize part: the hold, its post or void, a claw-back."""

    transfer_id: UUID
    kind: str
    phase: str
    amount_minor: int
    currency: str
    status: str | None = Field(description="for a pending hold: pending, posted or voided")
    created_at: datetime


class PrizePart(BaseModel):
    id: UUID
    kind: Literal["cash", "coupon", "welcome"]
    amount_minor: int
    currency: str
    status: str
    settled_at: datetime | None
    ledger: list[LedgerEntry]


class Prize(BaseModel):
    id: UUID
    campaign_id: UUID
    generation: int
    status: str
    reason: str | None
    earned_at: datetime
    release_at: datetime | None
    settled_at: datetime | None
    parts: list[PrizePart]


class InvitedFriend(BaseModel):
    """A friend who signed up through the member's link: a pseudonymous id and their state,
    nothing that identifies them."""

    friend_id: UUID
    signed_up_at: datetime
    status: str
    qualified_at: datetime | None


class EnrolmentRecord(BaseModel):
    id: UUID
    campaign_id: UUID
    campaign_name: str
    code: str
    enrolled_at: datetime
    deadline_at: datetime
    clicks: int
    friends: list[InvitedFriend]
    prizes: list[Prize]


class FriendRecord(BaseModel):
    """The person's own signup through someone's link, and the welcome rewards it earned."""

    friend_id: UUID
    market: str
    signed_up_at: datetime
    status: str
    status_reason: str | None
    qualified_at: datetime | None
    new_customer: bool
    enrolment_id: UUID | None = Field(description="the enrolment (pseudonymous) that invited them")
    campaign_id: UUID | None
    typed_code: str | None
    hashed_identifiers: list[str] = Field(
        description=(
            "what parrain keeps about this signup only as keyed hashes (it cannot turn them "
            "back into values): device id, email, and IP address and user agent when sent"
        )
    )
    welcome: list[PrizePart]


class ConsentEventRecord(BaseModel):
    """One consent event: a notice shown, a yes, a no, a yes taken back or run out; with the
    hash of the exact notice the person was shown and how they answered."""

    id: UUID
    campaign_id: UUID
    action: Literal["shown", "granted", "refused", "withdrawn", "expired"]
    data_category: str
    data_use: str
    channel: str
    declaration_version: int
    notice_sha256: str
    language: str
    method: str = Field(description="the screen and button, e.g. switch:ad_photo:on")
    occurred_at: datetime
    expires_at: datetime | None = Field(description="for a grant: when it runs out")


class ConsentReceiptRecord(BaseModel):
    """A signed consent receipt as issued (the file the person can verify offline)."""

    event_id: UUID
    action: Literal["granted", "withdrawn"]
    receipt: dict[str, Any]
    jws: str


class CouponRecord(BaseModel):
    """A prize coupon of the person's and what became of it."""

    code: str
    campaign_id: UUID
    amount_minor: int
    currency: str
    min_spend_minor: int
    status: str
    issued_at: datetime
    expires_at: datetime
    redeemed_order_id: str | None
    settled_at: datetime | None


class PayoutRecord(BaseModel):
    """A payment of the person's cash to PayPal (the receiver itself is in personal_data)."""

    payout_item_id: UUID
    amount_minor: int
    currency: str
    status: str
    paypal_status: str | None
    void_reason: str | None
    created_at: datetime
    settled_at: datetime | None


class MemberExport(BaseModel):
    """Everything parrain holds about one person, machine readable (GDPR Art. 15 and 20)."""

    format: Literal["parrain.member-export/1"] = EXPORT_FORMAT
    generated_at: datetime
    member_id: UUID
    market: str
    created_at: datetime
    erased: bool
    erased_at: datetime | None
    personal_data: PersonalData | None = Field(
        description="null once the person was erased: nothing can decrypt it any more"
    )
    enrolments: list[EnrolmentRecord]
    as_friend: FriendRecord | None
    consents: list[ConsentEventRecord] = Field(
        default_factory=list, description="every consent event about the person, oldest first"
    )
    receipts: list[ConsentReceiptRecord] = Field(
        default_factory=list, description="the signed receipt of every grant and withdrawal"
    )
    coupons: list[CouponRecord] = Field(
        default_factory=list, description="the person's prize coupons and their state"
    )
    payouts: list[PayoutRecord] = Field(
        default_factory=list, description="every payment of their cash to PayPal, oldest first"
    )


class ErasureRead(BaseModel):
    member_id: UUID
    erased_at: datetime
    already_erased: bool


BUNDLE_FORMAT: Literal["parrain.investigation/1"] = "parrain.investigation/1"


class InvestigationNotice(BaseModel):
    """A notice exactly as stored, with its hash recomputed from the stored text."""

    campaign_id: UUID
    declaration_id: UUID
    version: int
    language: NoticeLanguage
    content: str
    sha256: str = Field(description="the hash recorded when the notice was rendered")
    sha256_recomputed: str = Field(description="SHA-256 of `content` computed now")
    sha256_matches: bool
    readability: ReadabilityRead
    rendered_at: datetime


class ConsentRecordView(BaseModel):
    """One member's consent record, by pseudonym: what they answered, on which notice."""

    member_id: UUID
    events: list[ConsentEventRead]
    receipts: list[ReceiptFile]
    state: MemberConsentsRead
    audit_entries: list[AuditEntryRead] = Field(
        description="audit entries about the member (their consent and privacy actions)"
    )


class InvestigationBundle(BaseModel):
    """Evidence for a regulator: the chain's verification, every notice version, and, when a
    member is named, their consent record. Receipts verify offline with the public key."""

    format: Literal["parrain.investigation/1"] = BUNDLE_FORMAT
    generated_at: datetime
    requested_by: str
    request_entry: AuditEntryRead = Field(description="the audit entry of this request")
    audit_chain: ChainReportRead
    notices: list[InvestigationNotice]
    receipt_public_key: str = Field(description="Ed25519, base64url: verifies the receipts")
    receipt_key_id: str
    member: ConsentRecordView | None
