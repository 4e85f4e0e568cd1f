"""The auditor's view (``/console/audit``), read-only, for the privacy officer or a regulator:

- the audit chain, verified on every visit (edits, deletions and reorderings named), and its
  entries page by page;
- the register of notices: every declaration version with its notices' SHA-256, and each
  notice's text with its hash recomputed from the stored text;
- one member's consent record by pseudonym (the member id): events, the notice hash each
  rests on, receipts, the current state, and the audit entries about them;
- the investigation bundle: all of it as one JSON document to take away.

Looking at a member's record and exporting a bundle are themselves written to the audit
chain (:mod:`parrain.privacy.investigation`). Needs :attr:`Permission.AUDIT_VIEW`.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from parrain.audit import service as audit
from parrain.audit.schemas import AuditEntryRead
from parrain.campaigns import service as campaigns
from parrain.consent.schemas import NoticeLanguage
from parrain.errors import InvalidInput
from parrain.kit.crypto import encode_public_key
from parrain.operators.roles import Permission
from parrain.privacy import investigation
from parrain.web.forms import check_csrf
from parrain.web.pages.console.session import (
    PREFIX,
    clock_of,
    database_of,
    guard,
    page,
    settings_of,
)
from parrain.web.templating import gettext_for, locale_of

router = APIRouter()

AUDIT = f"{PREFIX}/audit"
#: Audit entries per page of the chain.
PAGE_SIZE = 50


class InvalidPseudonym(InvalidInput):
    code = "invalid_member_pseudonym"


def _member_id(request: Request, text: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        gettext = gettext_for(locale_of(request))
        raise InvalidPseudonym(
            gettext("A member's pseudonym is their member id, such as %(example)s.")
            % {"example": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}
        ) from None


@router.get(AUDIT, name="console_audit")
def audit_chain(
    request: Request, after: Annotated[int | None, Query(ge=0, le=2**62)] = None
) -> Response:
    """The chain's verification and a page of its entries (the latest page by default)."""
    who = guard(request, Permission.AUDIT_VIEW)
    if isinstance(who, Response):
        return who

    def work(session: Any) -> tuple[audit.ChainReport, list[AuditEntryRead], int]:
        report = audit.verify_chain(session=session)
        start = max(0, report.entries - PAGE_SIZE) if after is None else after
        entries = audit.list_entries(session=session, after_seq=start, limit=PAGE_SIZE)
        return report, [AuditEntryRead.of(entry) for entry in entries], start

    report, entries, start = database_of(request).read(work)
    return page(
        request,
        "console/audit/chain.html",
        {
            "who": who,
            "current": "audit",
            "report": report,
            "entries": entries,
            "previous": max(0, start - PAGE_SIZE) if start > 0 else None,
            "next": entries[-1].seq if len(entries) == PAGE_SIZE else None,
        },
    )


@router.get(f"{AUDIT}/notices", name="console_audit_notices")
def notice_register(request: Request) -> Response:
    """Every declaration version of every campaign with its notices' hashes."""
    who = guard(request, Permission.AUDIT_VIEW)
    if isinstance(who, Response):
        return who

    def work(session: Any) -> tuple[list[Any], dict[UUID, str]]:
        names = {c.id: c.name for c in campaigns.list_campaigns(session=session)}
        return investigation.notice_register(session=session), names

    declarations, names = database_of(request).read(work)
    return page(
        request,
        "console/audit/notices.html",
        {"who": who, "current": "audit", "declarations": declarations, "names": names},
    )


@router.get(f"{AUDIT}/notices/{{declaration_id}}/{{language}}", name="console_audit_notice")
def notice_text(declaration_id: UUID, language: NoticeLanguage, request: Request) -> Response:
    """One notice as members were shown it, its stored hash and the hash recomputed now."""
    who = guard(request, Permission.AUDIT_VIEW)
    if isinstance(who, Response):
        return who
    notice = database_of(request).read(
        lambda session: investigation.notice_text(
            session=session, declaration_id=declaration_id, language=language
        )
    )
    return page(
        request, "console/audit/notice.html", {"who": who, "current": "audit", "notice": notice}
    )


@router.get(f"{AUDIT}/consent", name="console_audit_consent")
def consent_record(
    request: Request, member: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """A form for a member's pseudonym; with one, that member's consent record (audited)."""
    who = guard(request, Permission.AUDIT_VIEW)
    if isinstance(who, Response):
        return who
    record = None
    if member:
        member_id = _member_id(request, member)
        clock, viewer = clock_of(request), who.session.operator.actor
        record = database_of(request).run(
            lambda session: investigation.consent_record(
                session=session, member_id=member_id, viewer=viewer, clock=clock
            )
        )
    return page(
        request,
        "console/audit/consent.html",
        {"who": who, "current": "audit", "member": member or "", "record": record},
    )


@router.post(f"{AUDIT}/bundle", name="console_audit_bundle")
def investigation_bundle(
    request: Request,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    member: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """The investigation bundle as a JSON download (audited)."""
    who = guard(request, Permission.AUDIT_VIEW)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, csrf_token)
    member_id = _member_id(request, member) if member and member.strip() else None
    key = settings_of(request).crypto.build_signing_key()
    clock, actor = clock_of(request), who.session.operator.actor
    bundle = database_of(request).run(
        lambda session: investigation.investigation_bundle(
            session=session,
            member_id=member_id,
            requested_by=actor,
            receipt_public_key=encode_public_key(key.public_key),
            receipt_key_id=key.kid,
            clock=clock,
        )
    )
    stamp = bundle.generated_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        content=bundle.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="investigation-{stamp}.json"',
            "Cache-Control": "no-store",
        },
    )
