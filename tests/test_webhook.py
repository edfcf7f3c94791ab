"""webhook_app: the calls service's callbacks in, over ASGI; only authentic, sound ones apply.

The app is driven through ``httpx.ASGITransport``. Behind it is a real
:class:`callflow.Client` whose Graph is an ``httpx.MockTransport`` answering as the spec's
example 4 does, and the signing keys are served by a :class:`KeyService` through another
``MockTransport``. Every test starts with example 4's invite running, and runs on asyncio
and on trio.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

import callflow
from callflow._webhook import Message, WebhookApp
from webhook_support import (
    APP_ID,
    CONFIG_URL,
    JWKS_URL,
    OTHER_KEY,
    KeyService,
    RecordingClient,
    completed,
    graph_client,
    invite,
    token,
    unsigned_token,
)

pytestmark = pytest.mark.anyio

LIMIT = 1_048_576
JSON = "application/json"
SPEC_BODY = json.dumps(completed()).encode()


@pytest.fixture
def keys() -> KeyService:
    return KeyService()


@pytest.fixture
async def key_http(keys: KeyService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(keys.handle)) as http:
        yield http


@pytest.fixture
async def client() -> AsyncIterator[RecordingClient]:
    async with graph_client() as http:
        client = RecordingClient(http, token="graph-token")
        async with client:
            yield client


@pytest.fixture
async def handle(client: RecordingClient) -> callflow.InviteHandle:
    return await invite(client)


@pytest.fixture
def app(client: RecordingClient, key_http: httpx.AsyncClient) -> WebhookApp:
    return callflow.webhook_app(
        client, app_id=APP_ID, openid_config_url=CONFIG_URL, http_client=key_http
    )


@pytest.fixture
async def bot(app: WebhookApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bot.example"
    ) as bot:
        yield bot


def bearer(value: str) -> str:
    return f"Bearer {value}"


def request(
    *,
    method: str = "POST",
    content: Any = SPEC_BODY,
    content_type: str | None = JSON,
    authorization: str | None = "signed",
    headers: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``bot.request``: a signed POST of the spec's notification.

    ``authorization="signed"`` stands for a valid token made now.
    """
    sent = list(headers or [])
    if content_type is not None:
        sent.append(("Content-Type", content_type))
    if authorization == "signed":
        authorization = bearer(token())
    if authorization is not None:
        sent.append(("Authorization", authorization))
    return {"method": method, "url": "/", "content": content, "headers": sent}


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert ["error"] == list(body)
    assert ["code", "message"] == sorted(body["error"])
    assert JSON == response.headers["content-type"]
    error: dict[str, str] = body["error"]
    return error


def assert_unmoved(handle: callflow.InviteHandle, client: RecordingClient) -> None:
    """Nothing reached the client, and the invite is where example 4's response left it."""
    assert [] == client.receipts
    assert callflow.InviteState.running == handle.state
    assert [callflow.InviteState.running] == [step.dest for step in handle.history]


class Chunks(httpx.AsyncByteStream, AsyncIterator[bytes]):
    """A request body streamed in ``count`` chunks of ``size`` bytes; counts those pulled.

    An iterator, not an async generator: the app stops pulling half-way, and an abandoned
    generator would warn when collected.
    """

    def __init__(self, count: int, size: int = 65_536) -> None:
        self.count = count
        self.size = size
        self.pulled = 0

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.pulled == self.count:
            raise StopAsyncIteration
        self.pulled += 1
        return b" " * self.size


async def stream(bot: httpx.AsyncClient, body: Chunks, **headers: str) -> httpx.Response:
    """POST ``body`` as it streams, with a valid token and only the headers given."""
    sent = {"Content-Type": JSON, "Authorization": bearer(token()), **headers}
    return await bot.send(httpx.Request("POST", bot.base_url, headers=sent, stream=body))


# --- what is accepted ----------------------------------------------------------------------


async def test_a_signed_notification_is_accepted_and_completes_the_invite(
    bot: httpx.AsyncClient, handle: callflow.InviteHandle, keys: KeyService
) -> None:
    response = await bot.request(**request())

    assert 202 == response.status_code
    assert b"" == response.content
    assert callflow.InviteState.completed == await handle.wait()
    assert {CONFIG_URL: 1, JWKS_URL: 1} == dict(keys.requests)


@pytest.mark.parametrize(
    "content_type", [JSON, "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"']
)
async def test_json_in_utf_8_is_accepted_however_spelled(
    bot: httpx.AsyncClient, handle: callflow.InviteHandle, content_type: str
) -> None:
    response = await bot.request(**request(content_type=content_type))

    assert 202 == response.status_code
    assert callflow.InviteState.completed == handle.state


async def test_the_client_gets_the_headers_without_the_token(
    bot: httpx.AsyncClient, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    await bot.request(**request())

    [headers] = client.headers
    assert JSON == headers["content-type"]
    assert "authorization" not in {name.lower() for name in headers}


async def test_a_notification_about_no_known_invite_is_still_accepted(
    bot: httpx.AsyncClient, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    stranger = json.dumps(completed("someone-elses-invite")).encode()

    response = await bot.request(**request(content=stranger))

    assert 202 == response.status_code
    assert callflow.InviteState.running == handle.state
    [receipt] = client.receipts
    assert [callflow.DeliveryOutcome.backlogged] == [d.outcome for d in receipt.deliveries]


@pytest.mark.parametrize("size", ["exact", "one-under"])
async def test_a_body_up_to_max_body_size_is_accepted(
    client: RecordingClient, handle: callflow.InviteHandle, key_http: httpx.AsyncClient, size: str
) -> None:
    limit = len(SPEC_BODY) + (1 if size == "one-under" else 0)
    app = callflow.webhook_app(
        client,
        app_id=APP_ID,
        openid_config_url=CONFIG_URL,
        http_client=key_http,
        max_body_size=limit,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://b"
    ) as bot:
        response = await bot.request(**request())

    assert 202 == response.status_code


# --- bad requests: answered with a JSON error, nothing changed -----------------------------

BAD_REQUESTS: list[Any] = [
    pytest.param(
        lambda: request(method="GET", content=None), 405, "methodNotAllowed", "GET", id="get"
    ),
    pytest.param(lambda: request(method="PUT"), 405, "methodNotAllowed", "PUT", id="put"),
    pytest.param(
        lambda: request(content_type="text/plain"),
        415,
        "unsupportedMediaType",
        "not 'text/plain'",
        id="text-plain",
    ),
    pytest.param(
        lambda: request(content_type="application/merge-patch+json"),
        415,
        "unsupportedMediaType",
        "merge-patch",
        id="another-json-type",
    ),
    pytest.param(
        lambda: request(content_type=None),
        415,
        "unsupportedMediaType",
        "none was given",
        id="no-content-type",
    ),
    pytest.param(
        lambda: request(content_type="application/json; charset=latin-1"),
        415,
        "unsupportedMediaType",
        "UTF-8, not 'latin-1'",
        id="not-utf-8",
    ),
    pytest.param(
        lambda: request(headers=[("Content-Type", JSON)]),
        415,
        "unsupportedMediaType",
        "more than one Content-Type",
        id="two-content-types",
    ),
    pytest.param(
        lambda: request(content=SPEC_BODY + b" " * LIMIT),
        413,
        "payloadTooLarge",
        f"over the limit of {LIMIT}",
        id="valid-json-but-too-large",
    ),
    pytest.param(
        lambda: request(headers=[("Content-Length", "lots")]),
        400,
        "badRequest",
        "Content-Length",
        id="content-length-not-a-number",
    ),
    pytest.param(
        lambda: request(headers=[("Content-Length", "9" * 5000)]),
        400,
        "badRequest",
        "Content-Length",
        id="content-length-of-5000-digits",
    ),
    pytest.param(
        lambda: request(content=b'{"value": [{'),
        400,
        "invalidNotification",
        "$: invalid JSON",
        id="invalid-json",
    ),
    pytest.param(
        lambda: request(content=b""), 400, "invalidNotification", "$: invalid JSON", id="empty"
    ),
    pytest.param(
        lambda: request(content=b'{"value": [{"resource": 7, "changeType": "updated"}]}'),
        400,
        "invalidNotification",
        "$.value[0].resource",
        id="wrong-type-names-its-path",
    ),
    pytest.param(
        lambda: request(content=b'{"@odata.type": "#microsoft.graph.commsNotifications"}'),
        400,
        "invalidNotification",
        "missing 'value'",
        id="no-value",
    ),
    pytest.param(
        lambda: request(content=b'{"value": "\xff"}'),
        400,
        "invalidNotification",
        "not UTF-8",
        id="not-utf-8-bytes",
    ),
]


@pytest.mark.parametrize(("make", "status", "code", "reason"), BAD_REQUESTS)
async def test_a_bad_request_is_refused_and_changes_nothing(
    bot: httpx.AsyncClient,
    client: RecordingClient,
    handle: callflow.InviteHandle,
    make: Callable[[], dict[str, Any]],
    status: int,
    code: str,
    reason: str,
) -> None:
    response = await bot.request(**make())

    assert status == response.status_code
    error = error_of(response)
    assert code == error["code"]
    assert reason in error["message"]
    assert_unmoved(handle, client)


async def test_a_wrong_method_is_told_which_one_is_allowed(bot: httpx.AsyncClient) -> None:
    response = await bot.request(**request(method="GET", content=None))

    assert "POST" == response.headers["allow"]


async def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read(
    bot: httpx.AsyncClient, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    body = Chunks(count=17)

    response = await stream(bot, body, **{"Content-Length": str(body.count * body.size)})

    assert 413 == response.status_code
    assert 0 == body.pulled
    assert_unmoved(handle, client)


async def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(
    bot: httpx.AsyncClient, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    body = Chunks(count=100)  # 6.4 MB, and no Content-Length to refuse it up front

    response = await stream(bot, body)

    assert 413 == response.status_code
    assert "payloadTooLarge" == error_of(response)["code"]
    assert LIMIT // body.size + 1 == body.pulled  # the 17th chunk passed the limit
    assert_unmoved(handle, client)


# --- authentication ------------------------------------------------------------------------

UNAUTHENTIC: list[Any] = [
    pytest.param(lambda: None, 401, "no Authorization header", id="no-token"),
    pytest.param(lambda: "Basic dXNlcjpwYXNz", 401, "not 'Bearer <token>'", id="basic"),
    pytest.param(lambda: bearer(token(key=OTHER_KEY)), 401, "signature", id="forged"),
    pytest.param(lambda: bearer(unsigned_token()), 401, "not signed with RS256", id="alg-none"),
    pytest.param(
        lambda: bearer(token(iat=1_000_000_000, nbf=1_000_000_000, exp=1_000_003_600)),
        401,
        "expired",
        id="expired",
    ),
    pytest.param(lambda: bearer(token(kid="key-9")), 401, "unknown key id", id="unknown-key"),
    pytest.param(
        lambda: bearer(token(aud="another-bot")), 403, "another application", id="wrong-audience"
    ),
]


@pytest.mark.parametrize(("make", "status", "reason"), UNAUTHENTIC)
async def test_an_unauthentic_notification_is_refused_and_changes_nothing(
    bot: httpx.AsyncClient,
    client: RecordingClient,
    handle: callflow.InviteHandle,
    caplog: pytest.LogCaptureFixture,
    make: Callable[[], str | None],
    status: int,
    reason: str,
) -> None:
    authorization = make()
    caplog.set_level(logging.DEBUG)

    response = await bot.request(**request(authorization=authorization))

    assert status == response.status_code
    error = error_of(response)
    assert ("forbidden" if status == 403 else "unauthenticated") == error["code"]
    assert reason in error["message"]
    if status == 401:
        assert "Bearer" == response.headers["www-authenticate"]
    if authorization is not None:
        secret = authorization.split()[-1]
        assert secret not in response.text
        assert secret not in caplog.text
    assert_unmoved(handle, client)


async def test_two_authorization_headers_are_refused(
    bot: httpx.AsyncClient, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    second = [("Authorization", bearer(token()))]

    response = await bot.request(**request(headers=second))

    assert 401 == response.status_code
    assert "more than one Authorization header" == error_of(response)["message"]
    assert_unmoved(handle, client)


# --- the order of the checks: the first that fails answers ---------------------------------

TOO_LARGE = SPEC_BODY + b" " * LIMIT

ORDER: list[Any] = [
    pytest.param(
        lambda: request(
            method="PUT", content_type="text/plain", content=TOO_LARGE, authorization=None
        ),
        405,
        id="method-first",
    ),
    pytest.param(
        lambda: request(content_type="text/plain", content=TOO_LARGE, authorization=None),
        415,
        id="then-content-type",
    ),
    pytest.param(lambda: request(content=TOO_LARGE, authorization=None), 413, id="then-size"),
    pytest.param(lambda: request(content=b"{", authorization=None), 401, id="then-auth"),
    pytest.param(lambda: request(content=b"{"), 400, id="then-the-body"),
]


@pytest.mark.parametrize(("make", "status"), ORDER)
async def test_the_first_failing_check_answers(
    bot: httpx.AsyncClient, make: Callable[[], dict[str, Any]], status: int
) -> None:
    response = await bot.request(**make())

    assert status == response.status_code


# --- verify=False --------------------------------------------------------------------------


async def test_verify_false_warns_that_anyone_can_forge_notifications(
    client: RecordingClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callflow.webhook"):
        callflow.webhook_app(client, app_id=APP_ID, verify=False)

    [record] = caplog.records
    assert logging.WARNING == record.levelno
    assert "verify=False" in record.getMessage()
    assert "forge notifications" in record.getMessage()


async def test_verify_false_accepts_an_unsigned_notification(
    client: RecordingClient, handle: callflow.InviteHandle, keys: KeyService
) -> None:
    app = callflow.webhook_app(client, app_id=APP_ID, verify=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://b"
    ) as bot:
        response = await bot.request(**request(authorization=None))

    assert 202 == response.status_code
    assert callflow.InviteState.completed == await handle.wait()
    assert {} == dict(keys.requests)


# --- mounting and lifespan -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "url"),
    [
        pytest.param(lambda app: Mount("/api/calls", app=app), "/api/calls/", id="mount"),
        pytest.param(lambda app: Route("/api/calls", app), "/api/calls", id="route"),
    ],
)
async def test_it_serves_under_starlette_as_is(
    app: WebhookApp,
    handle: callflow.InviteHandle,
    route: Callable[[WebhookApp], BaseRoute],
    url: str,
) -> None:
    site = Starlette(routes=[route(app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site), base_url="http://bot.example"
    ) as bot:
        refused = await bot.request(**{**request(method="GET", content=None), "url": url})
        response = await bot.request(**{**request(), "url": url})

    assert (405, "POST") == (refused.status_code, refused.headers["allow"])
    assert 202 == response.status_code
    assert callflow.InviteState.completed == await handle.wait()


async def run_lifespan(app: WebhookApp) -> list[Message]:
    """Start the app's lifespan and shut it down; what the app sent."""
    inbox: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


async def test_lifespan_startup_and_shutdown_complete_and_leave_a_given_client_open(
    app: WebhookApp, key_http: httpx.AsyncClient
) -> None:
    sent = await run_lifespan(app)

    assert [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}] == sent
    assert not key_http.is_closed


async def test_lifespan_shutdown_closes_the_client_the_validator_made(
    client: RecordingClient,
    handle: callflow.InviteHandle,
    keys: KeyService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[httpx.AsyncClient] = []
    real = httpx.AsyncClient

    def key_client(**options: Any) -> httpx.AsyncClient:
        made.append(real(transport=httpx.MockTransport(keys.handle), **options))
        return made[-1]

    app = callflow.webhook_app(client, app_id=APP_ID, openid_config_url=CONFIG_URL)
    async with real(transport=httpx.ASGITransport(app=app), base_url="http://b") as bot:
        monkeypatch.setattr(httpx, "AsyncClient", key_client)
        response = await bot.request(**request())
        monkeypatch.undo()

    sent = await run_lifespan(app)

    assert 202 == response.status_code
    assert "lifespan.shutdown.complete" == sent[-1]["type"]
    assert [True] == [http.is_closed for http in made]


async def test_a_failed_shutdown_is_reported_to_the_server(
    app: WebhookApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise OSError("socket already gone")

    assert app.validator is not None
    monkeypatch.setattr(app.validator, "aclose", broken)

    sent = await run_lifespan(app)

    assert "lifespan.shutdown.failed" == sent[-1]["type"]
    assert "socket already gone" in sent[-1]["message"]
    assert "closing the key fetcher failed" in caplog.text


async def test_a_websocket_is_not_served(app: WebhookApp) -> None:
    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing should be sent")

    with pytest.raises(TypeError, match="serves HTTP, not 'websocket'"):
        await app({"type": "websocket", "path": "/"}, receive, send)


# --- the edges -----------------------------------------------------------------------------


async def test_a_client_gone_before_its_body_ended_gets_no_answer_and_changes_nothing(
    app: WebhookApp, client: RecordingClient, handle: callflow.InviteHandle
) -> None:
    inbox: list[Message] = [
        {"type": "http.request", "body": SPEC_BODY[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-type", JSON.encode()), (b"authorization", bearer(token()).encode())]
    await app({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive, send)

    assert [] == sent
    assert_unmoved(handle, client)


class BrokenClient(callflow.Client):
    async def receive_notifications(
        self, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> callflow.Receipt:
        raise RuntimeError("the switchboard is on fire")


async def test_a_client_that_fails_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    app = callflow.webhook_app(BrokenClient(), app_id=APP_ID, verify=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://b"
    ) as bot:
        response = await bot.request(**request(authorization=None))

    assert 500 == response.status_code
    assert "internalError" == error_of(response)["code"]
    assert "on fire" not in response.text
    assert "on fire" in caplog.text


@pytest.mark.parametrize("size", [0, -1, LIMIT + 1])
async def test_max_body_size_must_be_within_the_parsers_limit(
    client: RecordingClient, size: int
) -> None:
    with pytest.raises(ValueError, match="max_body_size must be between 1 and 1048576"):
        callflow.webhook_app(client, app_id=APP_ID, max_body_size=size)


async def test_concurrent_notifications_about_many_invites_each_apply(
    bot: httpx.AsyncClient, client: RecordingClient, keys: KeyService
) -> None:
    handles = [await invite(client, f"ctx-{n}") for n in range(50)]
    statuses: list[int] = []

    async def deliver(n: int) -> None:
        body = json.dumps(completed(f"ctx-{n}")).encode()
        statuses.append((await bot.request(**request(content=body))).status_code)

    async with anyio.create_task_group() as tasks:
        for n in range(50):
            tasks.start_soon(deliver, n)

    assert [202] * 50 == statuses
    assert [callflow.InviteState.completed] * 50 == [h.state for h in handles]
    assert {CONFIG_URL: 1, JWKS_URL: 1} == dict(keys.requests)
