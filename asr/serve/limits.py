"""Request bodies bounded and the API key checked, before a handler sees anything.

:class:`BodyLimit` is plain ASGI middleware: a ``Content-Length`` over the limit is answered 413
at once, unread; a body without one (chunked) is counted as it arrives and cut off with 413 as
soon as it passes the limit, so an upload never grows past the limit in memory or on disk.
"""

from __future__ import annotations

import hmac
import json
import logging

logger = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being received."""


def _json_reply(status: int, message: str) -> tuple[dict, dict]:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """ASGI middleware: request bodies larger than ``max_bytes`` get 413 with a JSON error."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over the limit of {self.max_bytes} bytes (--max-upload-mb)"
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._reply(
                send, 413 if length.isdigit() else 400, message if length.isdigit() else "bad Content-Length"
            )
            return
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(message)
            return event

        async def tracking_send(event):
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            logger.info("refused a request body over %d bytes", self.max_bytes)
            if not started:
                await self._reply(send, 413, message)

    @staticmethod
    async def _reply(send, status: int, message: str) -> None:
        start, body = _json_reply(status, message)
        await send(start)
        await send(body)


def authorized(header: str | None, api_key: str | None) -> bool:
    """Whether an ``Authorization`` header value carries ``Bearer <api_key>`` (always, without a key).
    Compared in constant time, so the key cannot be guessed from response times."""
    if api_key is None:
        return True
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())
