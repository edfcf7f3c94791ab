"""webhook_app over real HTTP: served by uvicorn on a loopback port, posted to with httpx.

uvicorn needs asyncio, so these tests run on asyncio only. Each starts uvicorn on an
ephemeral port of 127.0.0.1 with its lifespan on, and shuts it down through
``should_exit``, as a signal would. Graph and the signing keys are ``httpx.MockTransport``
services, as in ``test_webhook.py``; only the webhook's side is on the network. The last
test puts :class:`callflow.testing.FakeGraph` on the other side: it answers the invite and
POSTs its own notifications, signed, to the served webhook.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

import callflow
from callflow.testing import Accepts, FakeGraph
from webhook_support import (
    APP_ID,
    CONFIG_URL,
    JWKS_URL,
    TENANT_ID,
    KeyService,
    RecordingClient,
    completed,
    example,
    graph_client,
    invite,
    token,
)

pytestmark = pytest.mark.anyio

JSON = "application/json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn's is a flag, not an event
                await anyio.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def served_webhook(
    client: RecordingClient, keys: KeyService, **options: Any
) -> AsyncIterator[str]:
    """A webhook_app for ``client`` made with ``options``, served; its base URL."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(keys.handle)) as key_http:
        app = callflow.webhook_app(
            client, app_id=APP_ID, openid_config_url=CONFIG_URL, http_client=key_http, **options
        )
        async with served(app) as url:
            yield url


@pytest.fixture
def keys() -> KeyService:
    return KeyService()


@pytest.fixture
async def client() -> AsyncIterator[RecordingClient]:
    async with graph_client() as http:
        client = RecordingClient(http, token="graph-token")
        async with client:
            yield client


@pytest.fixture
async def url(client: RecordingClient, keys: KeyService) -> AsyncIterator[str]:
    async with served_webhook(client, keys) as url:
        yield url


async def post(http: httpx.AsyncClient, body: bytes, *, signed: bool = True) -> httpx.Response:
    """POST a body as the calls service would: JSON, with a valid token unless not ``signed``."""
    headers = {"Content-Type": JSON}
    if signed:
        headers["Authorization"] = f"Bearer {token()}"
    return await http.post("/", content=body, headers=headers)


async def test_a_notification_over_http_completes_the_invite(
    url: str, client: RecordingClient
) -> None:
    handle = await invite(client)

    async with httpx.AsyncClient(base_url=url) as http:
        response = await post(http, json.dumps(completed()).encode())

    assert 202 == response.status_code
    with anyio.fail_after(5):
        assert callflow.InviteState.completed == await handle.wait()


async def test_an_unsigned_notification_over_http_is_refused_and_changes_nothing(
    url: str, client: RecordingClient
) -> None:
    handle = await invite(client)

    async with httpx.AsyncClient(base_url=url) as http:
        response = await post(http, json.dumps(completed()).encode(), signed=False)

    assert 401 == response.status_code
    assert "unauthenticated" == response.json()["error"]["code"]
    assert callflow.InviteState.running == handle.state
    assert [] == client.receipts


async def test_a_body_declared_too_large_over_http_is_refused(
    url: str, client: RecordingClient
) -> None:
    handle = await invite(client)

    async with httpx.AsyncClient(base_url=url) as http:
        response = await post(http, b" " * 2_000_000)

    assert 413 == response.status_code
    assert "payloadTooLarge" == response.json()["error"]["code"]
    assert callflow.InviteState.running == handle.state


async def test_a_burst_of_concurrent_notifications_loses_none(
    url: str, client: RecordingClient, keys: KeyService
) -> None:
    contexts = [f"burst-{n:03}" for n in range(200)]
    handles = [await invite(client, context) for context in contexts]
    statuses: list[int] = []

    async def deliver(http: httpx.AsyncClient, context: str) -> None:
        response = await post(http, json.dumps(completed(context)).encode())
        statuses.append(response.status_code)

    async with httpx.AsyncClient(base_url=url) as http, anyio.create_task_group() as tasks:
        for context in contexts:
            tasks.start_soon(deliver, http, context)

    assert [202] * 200 == statuses
    with anyio.fail_after(10):
        outcomes = [await handle.wait() for handle in handles]
    assert [callflow.InviteState.completed] * 200 == outcomes
    deliveries = [d for receipt in client.receipts for d in receipt.deliveries]
    assert 200 == len(client.receipts)
    assert [callflow.DeliveryOutcome.applied] * 200 == [d.outcome for d in deliveries]
    assert set(contexts) == {d.notification.client_context for d in deliveries}
    assert {CONFIG_URL: 1, JWKS_URL: 1} == dict(keys.requests)


async def test_fake_graphs_signed_notifications_over_http_complete_the_invite(
    keys: KeyService,
) -> None:
    spec = example()
    fake = FakeGraph(
        default_answer=Accepts(after=0.01),
        webhook_headers={"Authorization": f"Bearer {token()}"},
    )
    async with (
        fake,
        fake.http_client() as graph,
        httpx.AsyncClient(transport=httpx.MockTransport(keys.handle)) as key_http,
    ):
        client = callflow.Client(graph, token="graph-token")
        async with client:
            app = callflow.webhook_app(
                client, app_id=APP_ID, openid_config_url=CONFIG_URL, http_client=key_http
            )
            async with served(app) as url:
                fake.deliver_to(f"{url}/api/calls")
                handle = await client.invite(spec.call_id, spec.request["participants"])
                with anyio.fail_after(10):
                    assert callflow.InviteState.completed == await handle.wait()
                    await fake.drain()

    assert [("operation", 202), ("roster", 202)] == [(s.label, s.status_code) for s in fake.sent]


# --- slow and lying requests (issue 17, item 9) ---------------------------------------------


async def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` (a request line and headers, no body) and read the answer's first bytes."""
    host, port = url.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(head)
        with anyio.fail_after(5):
            return await stream.receive()


async def test_a_request_without_a_token_and_a_stalled_body_is_answered_401_at_once(
    url: str,
) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    answer = await raw_request(url, head)  # no body byte is ever sent
    assert answer.startswith(b"HTTP/1.1 401 ")


async def test_a_signed_request_whose_body_stalls_is_answered_408(
    client: RecordingClient, keys: KeyService
) -> None:
    async with served_webhook(client, keys, body_timeout=0.3) as url:
        head = (
            b"POST / HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token().encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        answer = await raw_request(url, head)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"requestTimeout" in answer


# --- mounted in Starlette, with the bot's own claims policy ---------------------------------


async def test_in_starlette_route_serves_the_path_and_mount_redirects_it(
    client: RecordingClient, keys: KeyService
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    seen: list[str] = []

    async def on_claims(claims: Mapping[str, Any]) -> None:
        seen.append(claims["tid"])

    async with httpx.AsyncClient(transport=httpx.MockTransport(keys.handle)) as key_http:
        webhook = callflow.webhook_app(
            client,
            app_id=APP_ID,
            openid_config_url=CONFIG_URL,
            http_client=key_http,
            on_claims=on_claims,
        )
        bot = Starlette(
            routes=[
                Route("/api/calls", webhook, methods=["POST"]),  # the README's way
                Mount("/mounted/calls", app=webhook),
            ]
        )
        handle = await invite(client)
        async with served(bot) as url, httpx.AsyncClient(base_url=url) as http:
            headers = {"Content-Type": JSON, "Authorization": f"Bearer {token()}"}
            body = json.dumps(completed()).encode()
            redirected = await http.post("/mounted/calls", content=body, headers=headers)
            answered = await http.post("/api/calls", content=body, headers=headers)
    # A Mount serves only "/mounted/calls/": without the slash Starlette answers 307.
    assert 307 == redirected.status_code
    assert redirected.headers["location"].endswith("/mounted/calls/")
    assert 202 == answered.status_code
    assert [TENANT_ID] == seen
    with anyio.fail_after(5):
        assert callflow.InviteState.completed == await handle.wait()


async def test_on_claims_raising_refuses_the_callback_with_its_status(
    client: RecordingClient, keys: KeyService
) -> None:
    def only_known_callers(claims: Mapping[str, Any]) -> None:
        raise callflow.WebhookAuthError("this caller is not ours", status_code=403)

    handle = await invite(client)
    async with (
        served_webhook(client, keys, on_claims=only_known_callers) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        response = await post(http, json.dumps(completed()).encode())
    assert 403 == response.status_code
    assert "this caller is not ours" == response.json()["error"]["message"]
    assert callflow.InviteState.running == handle.state


async def test_a_tenant_outside_the_allow_list_is_refused_over_http(
    client: RecordingClient, keys: KeyService
) -> None:
    handle = await invite(client)
    async with (
        served_webhook(client, keys, tenants=["someone-else"]) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        response = await post(http, json.dumps(completed()).encode())
    assert 403 == response.status_code
    assert "forbidden" == response.json()["error"]["code"]
    assert callflow.InviteState.running == handle.state
