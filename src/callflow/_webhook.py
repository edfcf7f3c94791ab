"""The bot's webhook as a pure ASGI application: callbacks in, a :class:`Client` fed.

Theory of operation
-------------------
The calls service POSTs each ``commsNotifications`` body to the bot's callback URL and
wants a quick 2xx. :func:`webhook_app` answers that POST with no web framework: it is an
ASGI application, so it runs under uvicorn as it is, and mounts in Starlette (or FastAPI)
with ``Mount("/api/calls", app=...)``. It serves whatever path it is given. (A Starlette
``Mount`` serves ``/api/calls/``, with the slash, and redirects ``/api/calls`` there;
``Route("/api/calls", app)`` serves the path without one.)

A request is checked in this order, and the first check that fails answers it:

1. the method must be POST (else 405, with ``Allow: POST``);
2. the content type must be ``application/json``, in UTF-8 (else 415);
3. a ``Content-Length`` must be a number of bytes (else 400: one of 5,000 digits too) and
   at most ``max_body_size``: a larger one is refused before any byte is read (413);
4. the ``Authorization: Bearer <JWT>`` must pass :class:`~callflow.TokenValidator`
   (401; 403 for an authentic token meant for another application or from a tenant
   outside ``tenants``). This is checked *before* the body is read, so a request without
   a valid token is answered at once and never holds a connection open with its body;
5. the body is read, counting the bytes as they stream in, so a chunked or lying body is
   cut off as soon as it passes the limit (413), and within ``body_timeout`` seconds
   (else 408: a stalled body does not hold its connection forever);
6. ``on_claims``, when given, is called with the verified claims (the bot's own policy:
   raising :class:`~callflow.WebhookAuthError` refuses the request with its status);
7. the body must parse (400, with :class:`~callflow.NotificationError`'s message, which
   names the JSON path that is wrong).

Only then is the body handed to :meth:`Client.receive_notifications`, which applies it
at once (no I/O) and returns; the answer is 202 with no body. A refused request changes
nothing, and its answer is ``{"error": {"code": ..., "message": ...}}``. The token is never
logged, echoed in an answer or passed on: the headers
:meth:`~callflow.Client.receive_notifications` sees lack ``Authorization``.

``verify=False`` switches authentication off, for local development only: the app logs a
warning when it is made, because anyone who can reach it can then forge notifications.

The app completes ASGI ``lifespan`` startup and shutdown, and on shutdown closes the HTTP
client the validator made for itself (one passed as ``http_client`` is left open). A
framework that mounts the app does not forward lifespan events to it: call
:meth:`WebhookApp.aclose` from the framework's own shutdown instead. The :class:`Client`'s
lifetime is the bot's to manage: it must be open while the app serves.

Under uvicorn::

    async with callflow.Client(token=get_token) as client:
        app = callflow.webhook_app(client, app_id=BOT_APP_ID)
        server = uvicorn.Server(uvicorn.Config(app, host="0.0.0.0", port=8000))
        await server.serve()

In an aiohttp bot (the Bot Framework's usual server), the bot's own handler does the same
work, with :class:`~callflow.TokenValidator` and :meth:`~callflow.Client.receive_notifications`::

    from aiohttp import web

    validator = callflow.TokenValidator(BOT_APP_ID)

    async def calls_callback(request: web.Request) -> web.Response:
        try:
            await validator.validate(request.headers.get("Authorization"))
        except callflow.WebhookAuthError as exc:
            return web.json_response(
                {"error": {"code": "unauthenticated", "message": str(exc)}},
                status=exc.status_code,
            )
        body = await request.read()  # bounded by web.Application(client_max_size=...)
        try:
            await client.receive_notifications(body, {"Content-Type": request.content_type})
        except callflow.NotificationError as exc:
            return web.json_response(
                {"error": {"code": "invalidNotification", "message": str(exc)}}, status=400
            )
        return web.Response(status=202)

    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/api/calls", calls_callback)
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx

from ._auth import DEFAULT_OPENID_CONFIG_URL, TokenValidator
from ._core._notifications import MAX_BODY_BYTES
from ._exceptions import NotificationError, WebhookAuthError

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["webhook_app", "WebhookApp"]

logger = logging.getLogger("callflow.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]
#: Called with a callback's verified claims before its body is applied.
ClaimsHook = Callable[[Mapping[str, Any]], Awaitable[None] | None]

_JSON: Final = "application/json"
_UTF8: Final = frozenset({"utf-8", "utf8"})
_UNAUTHENTICATED: Final = ((b"www-authenticate", b"Bearer"),)
#: More digits than any body size: such a Content-Length is not read as a number at all.
_MAX_LENGTH_DIGITS: Final = 18


class _Refusal(Exception):
    """A request answered with an error; raised by a check, answered in one place."""

    def __init__(self, status: int, code: str, message: str, headers: Headers = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class _Disconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


class WebhookApp:
    """The ASGI application :func:`webhook_app` returns.

    Attributes:
        client: the :class:`~callflow.Client` the notifications are given to.
        validator: the :class:`~callflow.TokenValidator`, or None with ``verify=False``.
        max_body_size: the largest body accepted, in bytes.
        body_timeout: the seconds a body may take to arrive.
        on_claims: called with each callback's verified claims, or None.

    """

    def __init__(
        self,
        client: Client,
        *,
        validator: TokenValidator | None,
        max_body_size: int,
        body_timeout: float = 10.0,
        on_claims: ClaimsHook | None = None,
    ) -> None:
        self.client = client
        self.validator = validator
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.on_claims = on_claims

    def __repr__(self) -> str:
        auth = "verify=False" if self.validator is None else repr(self.validator)
        return f"<WebhookApp {auth} max_body_size={self.max_body_size}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: an HTTP request or the lifespan.

        Raises:
            TypeError: for a scope that is neither ``http`` nor ``lifespan`` (a websocket),
                as the ASGI specification asks of an application.

        """
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise TypeError(f"callflow's webhook serves HTTP, not {kind!r}")

    async def aclose(self) -> None:
        """Close the HTTP client the validator made for itself, if any."""
        if self.validator is not None:
            await self.validator.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.aclose()
                except Exception as exc:
                    logger.exception("callflow webhook: closing the key fetcher failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status = await self._accept(scope, receive)
        except _Disconnected:
            return
        except _Refusal as refusal:
            logger.warning(
                "callflow webhook refused %s %s: %d %s",
                scope.get("method"),
                scope.get("path"),
                refusal.status,
                refusal.message,
            )
            error = {"error": {"code": refusal.code, "message": refusal.message}}
            await _respond(send, refusal.status, json.dumps(error).encode(), refusal.headers)
            return
        await _respond(send, status)

    async def _accept(self, scope: Scope, receive: Receive) -> int:
        """Run the checks in order, then hand the body over; the status to answer."""
        method = scope["method"]
        if method != "POST":
            raise _Refusal(
                405,
                "methodNotAllowed",
                f"{method} is not allowed: the webhook takes POST",
                ((b"allow", b"POST"),),
            )
        headers = _decode_headers(scope["headers"])
        _check_content_type(headers.get("content-type"))
        _check_content_length(headers.get("content-length"), self.max_body_size)
        claims = await self._authenticate(headers.get("authorization", []))
        with anyio.move_on_after(self.body_timeout) as timer:
            body = await _read_body(receive, self.max_body_size)
        if timer.cancelled_caught:
            raise _Refusal(
                408, "requestTimeout", f"the body did not arrive within {self.body_timeout} s"
            )
        if self.on_claims is not None and claims is not None:
            await self._run_claims_hook(claims)
        passed_on = {name: ", ".join(values) for name, values in headers.items()}
        passed_on.pop("authorization", None)
        try:
            await self.client.receive_notifications(body, passed_on)
        except NotificationError as exc:
            raise _Refusal(400, "invalidNotification", str(exc)) from None
        except Exception:
            logger.exception("callflow webhook: the client failed to apply a notification body")
            raise _Refusal(500, "internalError", "the notifications could not be applied") from None
        return 202

    async def _authenticate(self, authorization: list[str]) -> Mapping[str, Any] | None:
        if self.validator is None:
            return None
        if len(authorization) > 1:
            raise _Refusal(
                401, "unauthenticated", "more than one Authorization header", _UNAUTHENTICATED
            )
        try:
            return await self.validator.validate(authorization[0] if authorization else None)
        except WebhookAuthError as exc:
            raise _auth_refusal(exc) from None

    async def _run_claims_hook(self, claims: Mapping[str, Any]) -> None:
        assert self.on_claims is not None
        try:
            result = self.on_claims(claims)
            if inspect.isawaitable(result):
                await result
        except WebhookAuthError as exc:
            raise _auth_refusal(exc) from None
        except Exception:
            logger.exception("callflow webhook: on_claims raised")
            raise _Refusal(500, "internalError", "the claims could not be checked") from None


def _auth_refusal(exc: WebhookAuthError) -> _Refusal:
    if exc.status_code == 403:
        return _Refusal(403, "forbidden", str(exc))
    return _Refusal(exc.status_code, "unauthenticated", str(exc), _UNAUTHENTICATED)


def webhook_app(
    client: Client,
    *,
    app_id: str | Collection[str],
    verify: bool = True,
    openid_config_url: str = DEFAULT_OPENID_CONFIG_URL,
    http_client: httpx.AsyncClient | None = None,
    max_body_size: int = MAX_BODY_BYTES,
    tenants: Collection[str] | None = None,
    on_claims: ClaimsHook | None = None,
    body_timeout: float = 10.0,
) -> WebhookApp:
    """An ASGI application that authenticates the calls service's callbacks and applies them.

    See the module docstring for the checks, their order and their answers.

    Args:
        client: the :class:`~callflow.Client` whose invites the callbacks concern; it must
            be open while the app serves.
        app_id: the bot's application (client) id: tokens must name it as audience.
        verify: False switches authentication off, for local development only (a warning
            is logged: anyone can then forge notifications).
        openid_config_url: the calls service's OpenID configuration document, which names
            its signing keys.
        http_client: the client that fetches the signing keys; without one the validator
            makes its own, closed at lifespan shutdown or by :meth:`WebhookApp.aclose`.
        max_body_size: the largest body accepted, in bytes (at most the parser's limit,
            ``1_048_576``).
        tenants: when given, the only tenant ids whose callbacks are accepted (403 for
            any other); ``app_id`` may also be a collection of application ids.
        on_claims: called (sync or async) with each callback's verified claims before
            its body is applied; raising :class:`~callflow.WebhookAuthError` refuses the
            callback with that error's status. Not called with ``verify=False``.
        body_timeout: seconds the body may take to arrive once the token has passed
            (408 after that).

    Returns:
        The ASGI application.

    Raises:
        ValueError: ``max_body_size`` is not between 1 and 1_048_576, ``body_timeout`` is
            not positive, or ``app_id`` (or ``tenants``) is empty while ``verify`` is on.
        ImportError: ``verify`` is on and PyJWT is missing (``pip install 'callflow[jwt]'``).

    """
    if not 1 <= max_body_size <= MAX_BODY_BYTES:
        raise ValueError(
            f"max_body_size must be between 1 and {MAX_BODY_BYTES} (the parser's limit), "
            f"not {max_body_size}"
        )
    if not body_timeout > 0:
        raise ValueError(f"body_timeout must be a positive number of seconds, not {body_timeout}")
    validator: TokenValidator | None = None
    if verify:
        validator = TokenValidator(
            app_id, openid_config_url=openid_config_url, http_client=http_client, tenants=tenants
        )
    else:
        logger.warning(
            "callflow webhook made with verify=False: AUTHENTICATION IS OFF. Anyone who can "
            "reach this webhook can forge notifications and complete or fail invites. "
            "Use verify=False for local development only."
        )
    return WebhookApp(
        client,
        validator=validator,
        max_body_size=max_body_size,
        body_timeout=body_timeout,
        on_claims=on_claims,
    )


def _decode_headers(raw: Headers) -> dict[str, list[str]]:
    """The request's headers by lower-case name, each with every value it was sent with."""
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


def _check_content_type(values: list[str] | None) -> None:
    if not values:
        raise _Refusal(415, "unsupportedMediaType", f"the body must be {_JSON}; none was given")
    if len(values) > 1:
        raise _Refusal(415, "unsupportedMediaType", "more than one Content-Type header")
    media_type, *params = values[0].split(";")
    if media_type.strip().lower() != _JSON:
        raise _Refusal(
            415, "unsupportedMediaType", f"the body must be {_JSON}, not {media_type.strip()!r}"
        )
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _UTF8:
            raise _Refusal(415, "unsupportedMediaType", f"the body must be UTF-8, not {charset!r}")


def _check_content_length(values: list[str] | None, limit: int) -> None:
    if not values:
        return
    value = values[0].strip()
    if (
        len(values) > 1
        or not (value.isascii() and value.isdigit())
        or len(value) > _MAX_LENGTH_DIGITS
    ):
        raise _Refusal(400, "badRequest", "the Content-Length header is not a number of bytes")
    if int(value) > limit:
        raise _Refusal(
            413, "payloadTooLarge", f"the body of {int(value)} bytes is over the limit of {limit}"
        )


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, read until its end or until it passes ``limit``, whichever is first.

    Raises:
        _Refusal: 413 as soon as the bytes received pass ``limit``; the rest is not read.
        _Disconnected: the client went away first.

    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if len(body) + len(chunk) > limit:
            raise _Refusal(413, "payloadTooLarge", f"the body is over the limit of {limit} bytes")
        body += chunk
        if not message.get("more_body", False):
            return bytes(body)


async def _respond(send: Send, status: int, body: bytes = b"", headers: Headers = ()) -> None:
    start = [(b"content-length", str(len(body)).encode())]
    if body:
        start.append((b"content-type", _JSON.encode()))
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": body})
