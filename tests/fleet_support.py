"""A fleet on loopback: bot processes on one Redis, and a FakeGraph they reach over HTTP.

``python tests/fleet_support.py --redis URL --prefix P --graph URL --port N`` is one bot
instance: uvicorn serving, on 127.0.0.1:N,

- ``POST /callback``: :func:`callflow.webhook_app` over a ``Client(store=RedisStore(...))``
  (authentication off: loopback only);
- ``POST /invite`` ``{"call_id", "participants", "client_context"}``: ``client.invite``,
  answered once the POST to Graph is answered (with ``"wait": true``, once the invite
  has ended), with ``{"invite_id", "state"}``;
- ``POST /wait`` ``{"client_context"}``: ``client.attach`` then ``handle.wait()``, answered
  with the final state (what a restarted instance does);
- ``GET /health``.

In the test process, :func:`graph_front` serves a :class:`~callflow.testing.FakeGraph`
over HTTP (uvicorn, asyncio) so the bots' POSTs reach it, and :class:`Fleet` starts and
kills the bot processes. A POST whose answer the fake drops (``DropAfterTaking``) is
answered 504 by the front, as a gateway that lost the service's answer would: the
outcome is unknown to the bot and the invite is never re-sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn

import callflow
from callflow._redis import RedisStore
from callflow.testing import FakeGraph

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The bots' deadlines: short, so a dropped notification fails its invite within the test.
DEADLINE = 15.0
TOKEN = "fleet-test-token"


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json_answer(data: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return 200, json.dumps(data).encode(), [(b"content-type", b"application/json")]


# -- the test process's side ----------------------------------------------------------------


def front_app(fake: FakeGraph) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that passes each request to the fake's transport."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _body(receive)
        request = httpx.Request(
            scope["method"],
            callflow.GRAPH_BASE_URL.removesuffix("/v1.0") + scope["path"],
            headers=[(k.decode(), v.decode()) for k, v in scope["headers"]],
            content=body,
        )
        try:
            response = await fake.transport.handle_async_request(request)
        except httpx.ReadError:
            await _answer(send, 504, b"", [])
            return
        await response.aread()
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        await _answer(send, response.status_code, response.content, headers)

    return app


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` for the block (asyncio only)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await anyio.sleep(0.01)
        try:
            yield
        finally:
            server.should_exit = True


class Fleet:
    """Bot processes on one Redis keyspace, each a ``Client`` behind uvicorn."""

    def __init__(self, redis_url: str, prefix: str, graph_url: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.graph_url = graph_url
        self.log_dir = log_dir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int) -> str:
        """Start an instance on ``port``; its base URL (not yet ready: see :meth:`ready`)."""
        command = [sys.executable, __file__, "--redis", self.redis_url, "--prefix", self.prefix]
        command += ["--graph", self.graph_url, "--port", str(port)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(sys.path))}
        with (self.log_dir / f"bot-{port}.log").open("ab") as log:  # the child keeps its copy
            self.processes[port] = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        return f"http://127.0.0.1:{port}"

    async def ready(self, http: httpx.AsyncClient, port: int) -> None:
        """Wait until the instance answers /health (at most 20 s)."""
        with anyio.fail_after(20):
            while True:
                process = self.processes[port]
                if process.poll() is not None:
                    raise RuntimeError(f"bot on port {port} exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        return
                await anyio.sleep(0.05)

    def kill(self, port: int) -> None:
        """SIGKILL the instance: no cleanup of any kind runs."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, port: int) -> int:
        """SIGTERM the instance and wait for it to leave (uvicorn shuts down)."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise

    def close(self) -> None:
        """Kill what is left."""
        for port in list(self.processes):
            self.kill(port)


@contextlib.contextmanager
def fleet(redis_url: str, prefix: str, graph_url: str, log_dir: Path) -> Iterator[Fleet]:
    """A :class:`Fleet` whose processes are all killed at the end, also on failure."""
    group = Fleet(redis_url, prefix, graph_url, log_dir)
    try:
        yield group
    finally:
        group.close()


# -- the bot process -----------------------------------------------------------------------


def bot_app(client: callflow.Client) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The bot's ASGI app: the webhook, and the control endpoints the test drives."""
    webhook = callflow.webhook_app(client, app_id="fleet-test", verify=False)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/callback":
            await webhook(scope, receive, send)
            return
        if path == "/health":
            await _answer(send, *_json_answer({"ok": True}))
            return
        data = json.loads(await _body(receive) or b"{}")
        if path == "/invite":
            handle = await client.invite(
                data["call_id"], data["participants"], client_context=data["client_context"]
            )
            if data.get("wait"):  # answer once the invite has ended (the benchmark's way)
                with contextlib.suppress(callflow.InviteFailed):
                    await handle.wait()
            answer = {"invite_id": handle.invite_id, "state": handle.state.value}
        elif path == "/wait":
            handle = await client.attach(data["client_context"])
            with contextlib.suppress(callflow.InviteFailed):
                await handle.wait()
            answer = {"invite_id": handle.invite_id, "state": handle.state.value}
        else:
            await _answer(send, 404, b"", [])
            return
        await _answer(send, *_json_answer(answer))

    return app


async def _bot(args: argparse.Namespace) -> None:
    deadlines = callflow.Deadlines(
        requested=DEADLINE, running=DEADLINE, tearing_down_original=DEADLINE
    )
    async with (
        httpx.AsyncClient(base_url=args.graph, timeout=10.0) as http,
        callflow.Client(
            http,
            token=TOKEN,
            store=RedisStore(args.redis, prefix=args.prefix),
            deadlines=deadlines,
            release_after=2.0,
        ) as client,
    ):
        config = uvicorn.Config(
            bot_app(client), host="127.0.0.1", port=args.port, lifespan="off", log_level="warning"
        )
        server = uvicorn.Server(config)
        # SIGTERM stops the server, then the Client's ``async with`` ends: a clean stop
        # (uvicorn's own handlers would re-raise the signal and skip that).
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        async with anyio.create_task_group() as tg:

            async def on_sigterm() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        server.should_exit = True
                        return

            tg.start_soon(on_sigterm)
            await server.serve()
            tg.cancel_scope.cancel()


def main() -> None:
    """Run one bot instance (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--graph", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    anyio.run(_bot, args)
    print(f"bot {args.port} stopped after {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
