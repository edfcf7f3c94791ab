"""A small calling bot: callflow's webhook and an invite route, in Starlette under uvicorn.

Routes:

* ``POST /api/calls``: the calls service's notifications, handled by
  ``callflow.webhook_app`` (which checks them and feeds the Client).
* ``POST /invite``: invite participants into a call. The body is
  ``{"participants": [...], "callId": "...", "clientContext": "..."}`` (participants
  shaped as in the spec; callId and clientContext optional). The answer comes when the
  invite has finished: its state and the path it took, with times.

By default the bot talks to the embedded fake Graph service, which answers the Client's
POSTs in-process and posts its notifications to the bot's own /api/calls over real HTTP,
as the calls service would. The fake signs nothing, so in that mode the webhook does not
authenticate callbacks (``verify=False``, logged as a warning).

With CALLFLOW_TENANT_ID, CALLFLOW_CLIENT_ID and CALLFLOW_CLIENT_SECRET set, it invites
through the real Graph, and the webhook checks each callback's token (audience
CALLFLOW_APP_ID, by default CALLFLOW_CLIENT_ID). The calls service posts to the callback
URL of the call invited into, fixed when the bot created or answered that call:
CALLFLOW_CALLBACK_URL names it (a public https URL ending in /api/calls that reaches this
bot, such as a tunnel to --port). CALLFLOW_CALL_ID, if set, is the call /invite uses when
the body names none.

Run:  python examples/webhook_bot.py          (serves on 127.0.0.1:8000; see README.md)
      python examples/webhook_bot.py --once   (invites through its own /invite, then stops)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import attrs
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import _common
import callflow
from callflow.testing import SCENARIOS, SPEC_REQUESTS, Accepts, FakeGraph

logger = logging.getLogger("webhook_bot")

#: The call /invite uses against the fake service when the body names none: the spec's.
FAKE_CALL_ID: Final = next(s.call_id for s in SCENARIOS if s.example == 4)


@attrs.frozen
class Settings:
    """What the bot needs to know.

    Attributes:
        callback_url: where the calls service posts its notifications (this bot's
            /api/calls, as the service reaches it).
        call_id: the call /invite invites into when the body names none.
        app_id: the bot's application id: the audience of the callbacks' tokens.
        credentials: the application's credentials, or None for the embedded fake.

    """

    callback_url: str
    call_id: str | None
    app_id: str
    credentials: _common.Credentials | None

    @property
    def real(self) -> bool:
        """True against the real Graph."""
        return self.credentials is not None

    @classmethod
    def from_env(cls, local_url: str) -> Settings:
        """The settings from the environment; ``local_url`` is where this bot listens.

        Raises:
            _common.ConfigError: the real Graph is asked for, but something is missing.

        """
        credentials = _common.Credentials.from_env()
        if credentials is None:
            return cls(f"{local_url}/api/calls", FAKE_CALL_ID, "callflow-example-bot", None)
        # Fail now, not at startup, if a dependency of the real mode is missing.
        _common.require("azure.identity", "azure")  # Graph tokens
        _common.require("jwt", "jwt")  # the webhook's check of the callbacks' tokens
        callback_url = _common.env("CALLFLOW_CALLBACK_URL")
        if not (callback_url.startswith("https://") and callback_url.endswith("/api/calls")):
            raise _common.ConfigError(
                f"CALLFLOW_CALLBACK_URL {callback_url!r}: the calls service posts to a public "
                "https URL; this bot serves it at /api/calls"
            )
        app_id = os.environ.get("CALLFLOW_APP_ID") or credentials.client_id
        return cls(callback_url, os.environ.get("CALLFLOW_CALL_ID") or None, app_id, credentials)


def log_state(handle: callflow.InviteHandle, step: callflow.Step) -> None:
    """The Client's on_state callback: one log line per state an invite enters."""
    logger.info("invite %s: %s (%s)", handle.client_context, step.dest, step.cause)


def error(status: int, code: str, message: str) -> JSONResponse:
    """An error answer, shaped as Graph's."""
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def outcome(handle: callflow.InviteHandle, started: float) -> dict[str, Any]:
    """What /invite answers: the invite's end state and the path it took, with times."""
    path: list[dict[str, Any]] = [{"state": "requested", "at": 0.0}]
    path += [
        {"state": step.dest.value, "at": round(step.at - started, 3), "cause": step.cause}
        for step in handle.history
        if not step.ignored and step.dest is not step.source
    ]
    return {
        "clientContext": handle.client_context,
        "operationId": handle.operation_id,
        "kind": handle.invite.kind.value,
        "state": handle.state.value,
        "path": path,
        "failure": None if handle.failure is None else handle.failure.to_dict(),
    }


class Webhook:
    """The endpoint at /api/calls: hands each request to the webhook app made at startup.

    (Starlette's Route takes an object like this as an ASGI app; a function would be a
    request handler.)
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.webhook(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """The bot as an ASGI application; the Client opens at startup and closes at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            fake: FakeGraph | None = None
            if settings.credentials is None:
                logger.warning(
                    "FAKE GRAPH: no CALLFLOW_* credentials, so invites go to the embedded fake "
                    "service, which posts its notifications to %s. The webhook does NOT "
                    "authenticate callbacks in this mode (verify=False): do not expose it.",
                    settings.callback_url,
                )
                fake = FakeGraph(
                    deliver_to=settings.callback_url,
                    default_answer=Accepts(after=_common.ACCEPT_AFTER),
                )
                await stack.enter_async_context(fake)
                http = await stack.enter_async_context(fake.http_client())
                client = callflow.Client(http, on_state=log_state)
            else:
                token = _common.GraphToken(settings.credentials)
                stack.callback(token.close)
                client = callflow.Client(token=token, on_state=log_state)
                logger.info("real Graph; notifications expected at %s", settings.callback_url)
            await stack.enter_async_context(client)
            webhook = callflow.webhook_app(client, app_id=settings.app_id, verify=settings.real)
            # A mounted app gets no lifespan events of its own: close it from ours.
            stack.push_async_callback(webhook.aclose)
            app.state.client, app.state.webhook, app.state.fake = client, webhook, fake
            yield

    async def invite(request: Request) -> JSONResponse:
        """POST /invite: invite participants; answer when the invite has finished."""
        client: callflow.Client = request.app.state.client
        try:
            body = await request.json()
        except ValueError:
            return error(400, "badRequest", "the body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("participants"), list):
            return error(
                400, "badRequest", 'the body must be {"participants": [...]}, as in the spec'
            )
        call_id = body.get("callId") or settings.call_id
        if call_id is None:
            return error(400, "badRequest", "callId: name the call (or set CALLFLOW_CALL_ID)")
        started = client.clock.now()
        try:
            handle = await client.invite(
                call_id, body["participants"], client_context=body.get("clientContext")
            )
        except callflow.InviteError as exc:  # refused before anything was sent
            return error(400, "badRequest", str(exc))
        try:
            await handle.wait()  # the webhook's notifications move it on meanwhile
        except callflow.InviteFailed:
            pass  # the failure is part of the answer
        except callflow.CallflowError as exc:  # the bot is shutting down
            return error(503, "serviceUnavailable", str(exc))
        return JSONResponse(outcome(handle, started))

    return Starlette(
        routes=[
            # Route, not Mount: a Mount would serve /api/calls/ and redirect /api/calls.
            Route("/api/calls", Webhook()),
            Route("/invite", invite, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) for uvicorn; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def invite_once(server: uvicorn.Server, sock: socket.socket, base_url: str) -> int:
    """Serve; POST one invite to our own /invite, as a user would; print the answer; stop."""
    participants = list(SPEC_REQUESTS[4]["participants"])  # the spec's PSTN participant
    if os.environ.get("CALLFLOW_PHONE_NUMBER"):
        participants = [{"identity": {"phone": {"id": os.environ["CALLFLOW_PHONE_NUMBER"]}}}]
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(server.serve, sockets=[sock]))
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn's is a flag, not an event
                await anyio.sleep(0.01)
        try:
            async with httpx.AsyncClient(timeout=300) as http:
                response = await http.post(
                    f"{base_url}/invite", json={"participants": participants}
                )
        finally:
            server.should_exit = True
    print(f"POST {base_url}/invite -> HTTP {response.status_code}")
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code == 200 and response.json()["state"] == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any)")
    parser.add_argument(
        "--once",
        action="store_true",
        help="invite one PSTN participant through the bot's own /invite (the spec's, or "
        "CALLFLOW_PHONE_NUMBER), print the answer, and stop",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too many
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"{parser.prog}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    with sock:
        host, port = sock.getsockname()[:2]
        local_url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        try:
            settings = Settings.from_env(local_url)
        except _common.ConfigError as exc:
            print(f"{parser.prog}: {exc}", file=sys.stderr)
            return 2
        server = uvicorn.Server(uvicorn.Config(create_app(settings), lifespan="on"))
        if args.once:
            return anyio.run(invite_once, server, sock, local_url)
        logger.info("POST %s/invite to invite someone (examples/README.md)", local_url)
        server.run(sockets=[sock])
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
