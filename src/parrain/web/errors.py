"""One JSON shape for every error the API answers, and the handlers that produce it.

Every error body is ``{"error": {"code", "message", "details"}}``. ``code`` is stable and is
what clients branch on; ``message`` is for people; ``details`` carries structured context.
Expected errors are :class:`~parrain.errors.ParrainError` subclasses and keep their own code
and status. Framework errors (validation, unknown routes) are mapped to the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from parrain.errors import InvalidInput, NotFound, ParrainError
from parrain.web.ratelimit import RateLimited
from parrain.web.templating import gettext_for, locale_of, render

#: At most this many validation problems are listed; the rest are only counted.
MAX_PROBLEMS = 20
#: Longest location part or message echoed back: input is never repeated at length.
_MAX_LOCATION_PART = 64
_MAX_MESSAGE = 300


class InvalidRequest(InvalidInput):
    """The request does not match the API's schema; ``details["problems"]`` lists why."""

    code = "invalid_request"


class BadRequest(ParrainError):
    code = "bad_request"
    status_code = 400


class RouteNotFound(NotFound):
    """No route answers this address (distinct from a known route's missing resource)."""

    code = "not_found"


class MethodNotAllowed(ParrainError):
    code = "method_not_allowed"
    status_code = 405


class RequestTooLarge(ParrainError):
    code = "request_too_large"
    status_code = 413


class InternalError(ParrainError):
    code = "internal_error"
    status_code = 500


class DatabaseUnavailable(ParrainError):
    code = "database_unavailable"
    status_code = 503


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code; clients rely on it.")
    message: str = Field(description="What went wrong, for people.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured context (ids, fields, findings...)."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


_DESCRIPTIONS = {
    400: "The request is malformed.",
    401: (
        "No credential, or one that is malformed, unknown, expired or revoked: an integration "
        "API key (`invalid_api_key`) or an operator token (`operator_unauthenticated`)."
    ),
    403: (
        "The API key lacks the scope (`api_key_scope_denied`), or the operator's role the "
        "permission (`permission_denied`), this operation needs."
    ),
    404: "The resource does not exist (the code names which kind).",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is larger than the server accepts (`request_too_large`).",
    422: "The input is invalid (`invalid_request` lists each problem).",
    429: "Too many requests from this client (`rate_limited`); `Retry-After` says when to retry.",
    500: "An unexpected error (`internal_error`); details.error_id points to the log line.",
    503: "A dependency such as the database is unavailable.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for ``statuses``."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


def error_json(
    *,
    status_code: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(status_code=status_code, content=jsonable_encoder(body), headers=headers)


def error_response(
    error: ParrainError, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return error_json(
        status_code=error.status_code,
        code=error.code,
        message=error.message,
        details=error.details,
        headers=headers,
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_problems(errors: Sequence[Any], *, sent_json: bool = True) -> list[dict[str, str]]:
    """Location, message and type of each validation error, without the offending input."""
    problems = []
    for error in errors[:MAX_PROBLEMS]:
        location = ".".join(_clip(str(part), _MAX_LOCATION_PART) for part in error.get("loc", ()))
        kind = str(error.get("type", "invalid"))
        message = str(error.get("msg", "is invalid"))
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif kind == "model_attributes_type" and location == "body" and not sent_json:
            message = "the body must be a JSON object sent with Content-Type: application/json"
        elif kind == "json_invalid":
            # FastAPI puts the character offset where a field name would be.
            offset = location.removeprefix("body.")
            reason = (error.get("ctx") or {}).get("error", "")
            location = "body"
            message = f"the body is not valid JSON (at character {offset}): {reason}"
        problems.append(
            {"location": location, "message": _clip(message, _MAX_MESSAGE), "type": kind}
        )
    return problems


def invalid_request(errors: Sequence[Any], *, sent_json: bool = True) -> InvalidRequest:
    problems = describe_problems(errors, sent_json=sent_json)
    if not problems:
        return InvalidRequest("the request is not valid", problems=[])
    first = problems[0]
    summary = f"{first['location']}: {first['message']}" if first["location"] else first["message"]
    more = len(errors) - 1
    message = f"the request is not valid: {summary}" + (f" (and {more} more)" if more else "")
    details: dict[str, Any] = {"problems": problems}
    if len(errors) > len(problems):
        details["problems_omitted"] = len(errors) - len(problems)
    return InvalidRequest(message, **details)


#: Every 401 names how to authenticate (RFC 9110 §15.5.2): integrations send a bearer API key.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def wants_page(request: Request) -> bool:
    """A browser on a page route (not the API, not the docs): errors answer as a page."""
    path = request.url.path
    if path.startswith(("/v1/", "/openapi.json", "/docs")) or path == "/v1":
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, error: ParrainError) -> Response:
    """``error`` as the HTML page ``error.html``, with the same status."""
    language = locale_of(request)
    gettext = gettext_for(language)
    titles = {
        401: gettext("Please sign in"),
        403: gettext("You cannot do this"),
        404: gettext("Page not found"),
        409: gettext("This cannot be done now"),
        413: gettext("What you sent is too large"),
        429: gettext("Too many attempts"),
    }
    title = titles.get(error.status_code) or (
        gettext("Something went wrong on our side")
        if error.status_code >= 500
        else gettext("This request could not be handled")
    )
    # The framework's own errors and CSRF are explained in the visitor's language; a
    # domain error's message is specific and shown as it is.
    sentences = {
        "not_found": gettext("There is nothing at this address. Check the link you followed."),
        "method_not_allowed": gettext("This page cannot be used that way."),
        "request_too_large": gettext("What you sent is larger than this site accepts."),
        "csrf_failed": gettext(
            "This form has expired or was not sent from this site. Reload the page and try again."
        ),
        "internal_error": gettext("Please try again in a moment."),
        "rate_limited": gettext(
            "You made many requests in a short time. Wait a minute, then try again."
        ),
    }
    referer = request.headers.get("referer", "")
    own = f"{request.url.scheme}://{request.url.netloc}/"
    return render(
        request,
        "error.html",
        {
            "title": title,
            "message": sentences.get(error.code, error.message),
            "code": error.code,
            "back": referer if referer.startswith(own) else "/",
        },
        status_code=error.status_code,
    )


def _answer(
    request: Request, error: ParrainError, *, headers: Mapping[str, str] | None = None
) -> Response:
    if wants_page(request):
        return error_page(request, error)
    return error_response(error, headers=headers)


async def parrain_error_response(request: Request, error: Exception) -> Response:
    """The answer to a :class:`ParrainError` raised while handling ``request``: the app's
    handler of those (also called by a route served outside FastAPI's routing, ADR 29)."""
    assert isinstance(error, ParrainError)
    headers = dict(_CHALLENGE) if error.status_code == 401 else {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    response = _answer(request, error, headers=headers)
    response.headers.update(headers)  # the page answers carry them too
    return response


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    sent_json = media_type == "application/json" or media_type.endswith("+json")
    return _answer(request, invalid_request(error.errors(), sent_json=sent_json))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    if status == 404:
        return _answer(request, RouteNotFound("there is nothing at this address"))
    if status == 405:
        return _answer(
            request,
            MethodNotAllowed("this address does not answer that method"),
            headers=error.headers,
        )
    if status == 413:
        return _answer(request, RequestTooLarge("the request body is too large"))
    # Any other status the framework raises keeps it, with a code derived from its phrase.
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return error_json(
        status_code=status,
        code=phrase.lower().replace(" ", "_").replace("-", "_"),
        message=_clip(str(error.detail), _MAX_MESSAGE),
        headers=error.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ParrainError, parrain_error_response)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
