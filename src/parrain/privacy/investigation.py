"""What a privacy officer or a regulator reads: the register of notices with their hashes,
one member's consent record, and the bundle of evidence for an investigation. Read-only,
except that every look at a member's record and every bundle is itself appended to the
audit chain (who, about which pseudonymous member, when; never what was seen). Nothing here
commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.audit.chain import StoredEntry
from parrain.audit.schemas import AuditEntryRead, ChainReportRead
from parrain.consent import service as consent
from parrain.consent.errors import NoticeNotFound
from parrain.consent.schemas import DeclarationRead, NoticeLanguage
from parrain.kit.clock import Clock
from parrain.members import service as members
from parrain.privacy.schemas import (
    BUNDLE_FORMAT,
    ConsentRecordView,
    InvestigationBundle,
    InvestigationNotice,
)

#: The most audit entries about one member a record or a bundle lists.
MAX_SUBJECT_ENTRIES = 10_000
_PAGE = 500


def member_subject(member_id: UUID) -> str:
    """How the audit chain names a member (the consent and privacy entries use it)."""
    return f"member:{member_id}"


def _entries_about(session: Session, subject: str) -> Iterator[StoredEntry]:
    after, seen = 0, 0
    while seen < MAX_SUBJECT_ENTRIES:
        page = audit.list_entries(session=session, after_seq=after, limit=_PAGE, subject=subject)
        yield from page[: MAX_SUBJECT_ENTRIES - seen]
        seen += len(page)
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def notice_register(*, session: Session) -> list[DeclarationRead]:
    """Every declaration version and its notices' SHA-256, by campaign then version."""
    return consent.list_declarations(session=session)


def _stored_notice(
    session: Session, declaration: DeclarationRead, language: NoticeLanguage
) -> InvestigationNotice:
    read = consent.get_notice(
        session=session,
        campaign_id=declaration.campaign_id,
        language=language,
        version=declaration.version,
    )
    recomputed = hashlib.sha256(read.content.encode("utf-8")).hexdigest()
    return InvestigationNotice(
        campaign_id=read.campaign_id,
        declaration_id=read.declaration_id,
        version=read.version,
        language=read.language,
        content=read.content,
        sha256=read.sha256,
        sha256_recomputed=recomputed,
        sha256_matches=recomputed == read.sha256,
        readability=read.readability,
        rendered_at=read.rendered_at,
    )


def notice_text(
    *, session: Session, declaration_id: UUID, language: NoticeLanguage
) -> InvestigationNotice:
    """A stored notice as it was shown, with its hash recomputed from the stored text:
    ``sha256_matches`` is false if the text was changed after it was recorded."""
    declaration = consent.find_declaration(session=session, declaration_id=declaration_id)
    if declaration is None:
        raise NoticeNotFound(
            "there is no such declaration version", declaration_id=str(declaration_id)
        )
    return _stored_notice(session, declaration, language)


def consent_record(
    *, session: Session, member_id: UUID, viewer: str, clock: Clock
) -> ConsentRecordView:
    """One member's consent events (with the notice hash each rests on), current state,
    receipts and the audit entries about them; the look itself is audited."""
    members.get_row(session=session, member_id=member_id)  # MemberNotFound
    events = consent.history(session=session, member_id=member_id)
    view = ConsentRecordView(
        member_id=member_id,
        events=[consent.event_read(event) for event in events],
        receipts=[r for event in events if (r := consent.receipt_file(event)) is not None],
        state=consent.member_consents(session=session, member_id=member_id, clock=clock),
        audit_entries=[
            AuditEntryRead.of(entry) for entry in _entries_about(session, member_subject(member_id))
        ],
    )
    audit.record(
        session=session,
        actor=viewer,
        action="investigation.consent_record_viewed",
        subject=member_subject(member_id),
        details={"events": len(view.events), "receipts": len(view.receipts)},
        clock=clock,
    )
    return view


def investigation_bundle(
    *,
    session: Session,
    member_id: UUID | None,
    requested_by: str,
    receipt_public_key: str,
    receipt_key_id: str,
    clock: Clock,
) -> InvestigationBundle:
    """The evidence for an investigation, in one JSON document: the audit chain's
    verification, every notice version (texts and hashes, recomputed), and, for a member,
    their consent record. The request is audited."""
    record = (
        consent_record(session=session, member_id=member_id, viewer=requested_by, clock=clock)
        if member_id is not None
        else None
    )
    notices = [
        _stored_notice(session, declaration, summary.language)
        for declaration in notice_register(session=session)
        for summary in declaration.notices
    ]
    entry = audit.record(
        session=session,
        actor=requested_by,
        action="investigation.bundle_exported",
        subject=member_subject(member_id) if member_id is not None else "investigation",
        details={
            "notices": len(notices),
            "consent_events": len(record.events) if record is not None else 0,
        },
        clock=clock,
    )
    # Verified after the request was appended: the bundle covers its own entry.
    report = audit.verify_chain(session=session)
    return InvestigationBundle(
        format=BUNDLE_FORMAT,
        generated_at=clock.now(),
        requested_by=requested_by,
        request_entry=AuditEntryRead.of(entry),
        audit_chain=ChainReportRead.of(report),
        notices=notices,
        receipt_public_key=receipt_public_key,
        receipt_key_id=receipt_key_id,
        member=record,
    )
