"""The member's pages under ``/m``: server-rendered, usable without JavaScript, in English
and French. A member arrives from the marketplace's app with a short-lived signed token
(``/m/enter``), which opens a session cookie; every page is keyed from that session."""

from __future__ import annotations

from fastapi import APIRouter

from parrain.web.pages.member import consents, data, enrolment, enter, progress

router = APIRouter(include_in_schema=False)
for _part in (enter, progress, enrolment, consents, data):
    router.include_router(_part.router, prefix="/m")

__all__ = ["router"]
