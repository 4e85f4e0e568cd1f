"""ASGI middleware of the API: a request size guard and the last line against bugs."""

from __future__ import annotations

import traceback
from pathlib import PurePath

from starlette.types import ASGIApp, Message, Receive, Scope, Send

import parrain
from parrain.kit.ids import new_id
from parrain.logging import get_logger
from parrain.web.errors import BadRequest, InternalError, RequestTooLarge, error_response

_log = get_logger(__name__)

#: How many of parrain's innermost stack frames an unexpected error's log line names.
_LOGGED_FRAMES = 8
_PACKAGE_DIR = PurePath(parrain.__file__).parent


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with 413 before any route runs.

    A declared ``Content-Length`` over the limit is refused without reading the body. A body
    streamed without one (chunked) is read and counted up to the limit, then handed to the
    app in one piece, so no route ever sees part of an oversized request.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            declared = declared.strip()
            if not (declared.isascii() and declared.isdigit()):
                response = error_response(BadRequest("the Content-Length header is not a number"))
                await response(scope, receive, send)
                return
            if int(declared) > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its whole body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = RequestTooLarge(
            f"the request body is larger than {self.max_body_bytes} bytes",
            max_body_bytes=self.max_body_bytes,
        )
        # The rest of the body is never read, so the connection cannot be reused.
        await error_response(error, headers={"connection": "close"})(scope, receive, send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` with ``body``, already read whole, delivered first."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _content_length(scope: Scope) -> str | None:
    """The first ``Content-Length`` header, as ``Headers(scope=scope).get`` would read it,
    without building a ``Headers`` for every request."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            text: str = value.decode("latin-1")
            return text
    return None


class UnexpectedErrorMiddleware:
    """Answer any exception no handler claimed with a bare 500 ``internal_error``.

    The client gets an ``error_id`` and nothing else. The log line names the exception's
    type and where it was raised, never its message or arguments: those can hold personal
    data (SQL parameters, input values).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            error_id = str(new_id())
            _log.error(
                "unexpected_error",
                error_id=error_id,
                error_type=type(error).__qualname__,
                cause_type=_cause_type(error),
                sqlstate=getattr(getattr(error, "orig", None), "sqlstate", None),
                method=scope.get("method"),
                endpoint=getattr(scope.get("endpoint"), "__qualname__", None),
                frames=_frames(error),
            )
            if response_started:
                return  # too late for a clean answer; the server closes the connection
            response = error_response(
                InternalError("an unexpected error occurred", error_id=error_id)
            )
            await response(scope, receive, send)


def _cause_type(error: BaseException) -> str | None:
    cause = error.__cause__ or error.__context__
    return type(cause).__qualname__ if cause is not None else None


def _frames(error: BaseException) -> list[str]:
    """``package/module.py:line in function`` of parrain's innermost frames and of the frame
    that raised, without any value."""
    stack = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in stack if PurePath(frame.filename).is_relative_to(_PACKAGE_DIR)]
    chosen = ours[-_LOGGED_FRAMES:]
    if stack and (not chosen or chosen[-1] is not stack[-1]):
        chosen.append(stack[-1])
    return [
        f"{'/'.join(PurePath(frame.filename).parts[-2:])}:{frame.lineno} in {frame.name}"
        for frame in chosen
    ]
