"""The async engine end to end: Client and InviteHandle over httpx on an anyio event loop.

Every test talks to the invite endpoint through ``httpx.MockTransport`` answering as the
spec does, keeps time on a :class:`~callflow.testing.VirtualClock` (nothing really
sleeps), and runs on asyncio and on trio. The spec's JSON comes from the spec file
through :mod:`spec_examples`; what the spec does not print (the teardown of the replaced
call or meeting leg) is built here from it.

The helpers at the top are shared with ``test_client_retry`` and ``test_client_hooks``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import callflow
from callflow import (
    CallflowError,
    Deadlines,
    DeliveryOutcome,
    FailureReason,
    InviteError,
    InviteFailed,
    InviteHandle,
    InviteState,
    Trigger,
)
from callflow.testing import VirtualClock
from spec_examples import Example, examples

pytestmark = pytest.mark.anyio

GRAPH = callflow.GRAPH_BASE_URL
#: Distinctive, so that a leak anywhere is found by a plain substring search.
TOKEN = "eyJ0eXAiOiJKV1Qi.callflow-SECRET-bearer-5f1d0c7a9e.c2lnbmF0dXJl"

Body = dict[str, Any]
#: What the endpoint answers one request with: a response (copied for each request), a
#: transport error to raise, or an async function of the request.
Answer = (
    httpx.Response
    | type[httpx.TransportError]
    | Callable[[httpx.Request], Awaitable[httpx.Response]]
)


# -- shared helpers ------------------------------------------------------------------------


def spec(number: int) -> Example:
    """The spec's example ``number``."""
    return examples()[number]


def participants_of(example: Example) -> list[Body]:
    """The example's participants as callflow can send them.

    Example 2 as printed sets replacesCallId on two participants, which callflow refuses;
    its response echoes them with replacesCallId null, and that is what is invited.
    """
    if example.number == 2:
        participants: list[Body] = example.response["participants"]
    else:
        participants = example.request["participants"]
    return participants


def is_replacing(example: Example) -> bool:
    """True for the examples that replace a call or move a participant (1, 3 and 5)."""
    return any(p.get("replacesCallId") for p in participants_of(example))


def commsnotifications(*items: Body) -> Body:
    """A webhook body carrying ``items``, shaped like the spec's."""
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": list(items)}


def teardown(example: Example) -> Body:
    """What finishes a replacing example after the operation completed.

    replace_p2p: the replaced call deleted. move_meeting: the moved participant deleted
    from the source meeting.
    """
    first = example.request["participants"][0]
    original = first["replacesCallId"]
    if "participantId" in first:
        resource = f"/communications/calls/{original}/participants/{first['participantId']}"
        data: Body | None = None
    else:
        resource = f"/communications/calls/{original}"
        data = {"@odata.type": "#microsoft.graph.call", "state": "terminated"}
    return commsnotifications(
        {
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": "deleted",
            "resource": resource,
            "resourceUrl": resource,
            "resourceData": data,
        }
    )


def declined(example: Example) -> Body:
    """The example's operation-completed notification, turned into a declined invite."""
    body = copy.deepcopy(example.completed)
    data = body["value"][0]["resourceData"]
    data["status"] = "failed"
    data["resultInfo"] = {"code": 403, "subcode": 10004, "message": "The call was declined."}
    return body


def operation_url(call_id: str, operation_id: str) -> str:
    return f"{GRAPH}/communications/calls/{call_id}/operations/{operation_id}"


def accepted(example: Example) -> httpx.Response:
    """The spec's 200 answer to the example's POST, with its Location header."""
    location = operation_url(example.call_id, example.response["id"])
    return httpx.Response(200, json=example.response, headers={"Location": location})


def throttled(retry_after: str | None = None) -> httpx.Response:
    """A 429, with a Retry-After header when given."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    error = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
    return httpx.Response(429, json=error, headers=headers)


class InviteEndpoint:
    """``POST .../participants/invite`` behind ``httpx.MockTransport``.

    Answers each request with the next of ``answers`` (the last one repeats) and records
    every request and the virtual time it came at.
    """

    def __init__(self, clock: VirtualClock, *answers: Answer) -> None:
        assert answers, "an endpoint needs at least one answer"
        self.clock = clock
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.clock.now())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, httpx.Response):
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        if isinstance(answer, type):
            raise answer(f"{answer.__name__} from the mock transport", request=request)
        return await answer(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def authorizations(self) -> list[str | None]:
        return [r.headers.get("authorization") for r in self.requests]


@asynccontextmanager
async def open_client(
    endpoint: InviteEndpoint, clock: VirtualClock, **options: Any
) -> AsyncIterator[callflow.Client]:
    """A Client on Graph's base URL whose requests go to ``endpoint``."""
    options.setdefault("token", TOKEN)
    async with (
        httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http,
        callflow.Client(http, clock=clock, **options) as client,
    ):
        yield client


async def invite_example(client: callflow.Client, example: Example, **options: Any) -> InviteHandle:
    """Invite the example's participants with its clientContext."""
    return await client.invite(
        example.call_id,
        participants_of(example),
        client_context=example.request["clientContext"],
        **options,
    )


def outcomes(receipt: callflow.Receipt) -> list[DeliveryOutcome]:
    return [d.outcome for d in receipt.deliveries]


def path(handle: InviteHandle) -> list[InviteState]:
    """The states the invite entered, in order (absorbed inputs left out)."""
    return [s.dest for s in handle.history if not s.ignored]


ALL = sorted(examples())
REPLACING = [n for n in ALL if is_replacing(spec(n))]


# -- the spec's examples -------------------------------------------------------------------


@pytest.mark.parametrize("number", ALL)
async def test_invite_posts_the_spec_request(number: int, virtual_clock: VirtualClock) -> None:
    example = spec(number)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    async with open_client(endpoint, virtual_clock) as client:
        await invite_example(client, example)
    [request] = endpoint.requests
    expected_url = GRAPH + example.request_path.replace("{id}", example.call_id)
    assert ("POST", expected_url) == (request.method, str(request.url))
    assert "application/json" == request.headers["content-type"]
    expected_body = {**example.request, "participants": participants_of(example)}
    assert [expected_body] == endpoint.bodies


@pytest.mark.parametrize("number", ALL)
async def test_spec_example_runs_end_to_end(number: int, virtual_clock: VirtualClock) -> None:
    example = spec(number)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, example)
        assert (InviteState.running, example.response["id"]) == (
            handle.state,
            handle.operation_id,
        )
        notifications = [example.completed, example.roster]
        if is_replacing(example):
            notifications.append(teardown(example))
        for body in notifications:
            assert [DeliveryOutcome.applied] == outcomes(await client.receive_notifications(body))
        assert InviteState.completed == await handle.wait()
    if is_replacing(example):
        expected = [InviteState.running, InviteState.tearing_down_original, InviteState.completed]
    else:
        expected = [InviteState.running, InviteState.completed]
    assert expected == path(handle)


@pytest.mark.parametrize("number", REPLACING)
async def test_replacing_example_waits_for_its_teardown(
    number: int, virtual_clock: VirtualClock
) -> None:
    example = spec(number)
    async with open_client(InviteEndpoint(virtual_clock, accepted(example)), virtual_clock) as c:
        handle = await invite_example(c, example)
        await c.receive_notifications(example.completed)
        await c.receive_notifications(example.roster)
        assert InviteState.tearing_down_original == handle.state


@pytest.mark.parametrize("number", REPLACING)
async def test_replacing_example_without_teardown_fails_at_the_teardown_deadline(
    number: int, virtual_clock: VirtualClock
) -> None:
    example = spec(number)
    completed_at = 5.0
    async with open_client(InviteEndpoint(virtual_clock, accepted(example)), virtual_clock) as c:
        handle = await invite_example(c, example)
        await virtual_clock.sleep(completed_at)
        await c.receive_notifications(example.completed)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    failed = caught.value.history[-1]
    assert (InviteState.tearing_down_original, InviteState.failed) == (failed.source, failed.dest)
    assert completed_at + Deadlines().tearing_down_original == failed.at
    assert FailureReason.timeout == caught.value.failure.reason
    assert "the operation completed" in caught.value.failure.message


async def test_printed_example_2_is_refused_and_nothing_is_sent(
    virtual_clock: VirtualClock,
) -> None:
    example = spec(2)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    async with open_client(endpoint, virtual_clock) as client:
        with pytest.raises(InviteError, match="replacesCallId"):
            await client.invite(example.call_id, example.request["participants"])
        assert 0 == len(client.switchboard)
    assert [] == endpoint.requests


# -- failures ------------------------------------------------------------------------------


async def test_declined_operation_raises_invite_failed_with_its_result_info(
    virtual_clock: VirtualClock,
) -> None:
    example = spec(4)
    async with open_client(InviteEndpoint(virtual_clock, accepted(example)), virtual_clock) as c:
        handle = await invite_example(c, example)
        await c.receive_notifications(declined(example))
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    error = caught.value
    assert FailureReason.operation_failed == error.failure.reason
    assert error.result_info is not None
    assert (403, 10004, "The call was declined.") == (
        error.result_info.code,
        error.result_info.subcode,
        error.result_info.message,
    )
    assert (None, None, None) == (error.status_code, error.error_code, error.error_message)
    assert handle.history == error.history
    assert InviteState.failed == handle.state


@pytest.mark.parametrize(
    ("call_id", "participants", "client_context"),
    [
        pytest.param("call-1", [], None, id="no participants"),
        pytest.param(
            "call-1", [{"identity": {"phone": {"id": "12345"}}}], None, id="phone not E.164"
        ),
        pytest.param(
            "call-1",
            [{"identity": {"user": {"id": f"user-{i}"}}} for i in range(6)],
            None,
            id="six participants",
        ),
        pytest.param(
            "call-1",
            [{"participantId": "p-1", "identity": {"user": {"id": "user-1"}}}],
            None,
            id="participantId without replacesCallId",
        ),
        pytest.param("call-1", [{"identity": {}}], None, id="no identity"),
        pytest.param(
            "call-1", [{"identity": {"user": {"id": "u"}}}], "x" * 257, id="clientContext too long"
        ),
        pytest.param("a/b", [{"identity": {"user": {"id": "u"}}}], None, id="call id with a /"),
    ],
)
async def test_invalid_invite_raises_invite_error_and_sends_nothing(
    call_id: str,
    participants: list[Body],
    client_context: str | None,
    virtual_clock: VirtualClock,
) -> None:
    endpoint = InviteEndpoint(virtual_clock, accepted(spec(4)))
    async with open_client(endpoint, virtual_clock) as client:
        with pytest.raises(InviteError):
            await client.invite(call_id, participants, client_context=client_context)
        assert 0 == len(client.switchboard)
    assert [] == endpoint.requests


async def test_invite_on_a_client_not_opened_raises_callflow_error() -> None:
    endpoint = InviteEndpoint(VirtualClock(), accepted(spec(4)))
    async with httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http:
        client = callflow.Client(http, token=TOKEN, clock=VirtualClock())
        with pytest.raises(CallflowError, match="not open"):
            await invite_example(client, spec(4))
    assert [] == endpoint.requests


async def test_invite_timeout_overrides_the_client_deadlines(virtual_clock: VirtualClock) -> None:
    example = spec(4)
    long = Deadlines(requested=1000.0, running=1000.0, tearing_down_original=1000.0)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    async with open_client(endpoint, virtual_clock, deadlines=long) as client:
        handle = await invite_example(client, example, timeout=5.0)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    # The spec's answer gives no participant id, so the cancel waits for one until the
    # client's own cancelling deadline (30 s): the invite's timeout bounds the ringing.
    left = next(s for s in caught.value.history if s.source is InviteState.running)
    assert (Trigger.timed_out, InviteState.cancelling, 5.0) == (left.trigger, left.dest, left.at)
    assert (FailureReason.cancel_failed, 35.0) == (
        caught.value.failure.reason,
        caught.value.history[-1].at,
    )


# -- notifications -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [(4, InviteState.completed), (1, InviteState.tearing_down_original)],
)
async def test_notification_that_beats_the_response_holds_against_the_late_200(
    number: int, expected: InviteState, virtual_clock: VirtualClock
) -> None:
    example = spec(number)
    opened: list[callflow.Client] = []

    async def notify_then_answer(request: httpx.Request) -> httpx.Response:
        receipt = await opened[0].receive_notifications(example.completed)
        assert [DeliveryOutcome.applied] == outcomes(receipt)
        return accepted(example)

    endpoint = InviteEndpoint(virtual_clock, notify_then_answer)
    async with open_client(endpoint, virtual_clock) as client:
        opened.append(client)
        handle = await invite_example(client, example)
        assert expected == handle.state
    assert [expected] == path(handle)
    late = handle.history[-1]
    assert (Trigger.accepted, True) == (late.trigger, late.ignored)
    assert example.response["id"] == handle.operation_id


@pytest.mark.parametrize("number", [1, 4])
async def test_duplicate_notification_is_reported_and_changes_nothing(
    number: int, virtual_clock: VirtualClock
) -> None:
    example = spec(number)
    async with open_client(InviteEndpoint(virtual_clock, accepted(example)), virtual_clock) as c:
        handle = await invite_example(c, example)
        assert [DeliveryOutcome.applied] == outcomes(
            await c.receive_notifications(example.completed)
        )
        history = handle.history
        again = await c.receive_notifications(json.dumps(example.completed))
        assert [DeliveryOutcome.duplicate] == outcomes(again)
        assert history == handle.history


async def test_async_iteration_yields_each_change_as_it_happens() -> None:
    clock = VirtualClock()
    example = spec(1)
    seen: list[InviteState] = []

    async def follow(handle: InviteHandle) -> None:
        async for step in handle:
            seen.append(step.dest)

    async with open_client(InviteEndpoint(clock, accepted(example)), clock) as client:
        handle = await invite_example(client, example)
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow, handle)
            await anyio.wait_all_tasks_blocked()
            assert [InviteState.running] == seen
            await client.receive_notifications(example.completed)
            await anyio.wait_all_tasks_blocked()
            assert [InviteState.running, InviteState.tearing_down_original] == seen
            await client.receive_notifications(teardown(example))
    assert [
        InviteState.running,
        InviteState.tearing_down_original,
        InviteState.completed,
    ] == seen


async def test_cancelling_a_wait_does_not_cancel_the_invite() -> None:
    clock = VirtualClock()
    example = spec(4)
    async with open_client(InviteEndpoint(clock, accepted(example)), clock) as client:
        handle = await invite_example(client, example)
        async with anyio.create_task_group() as tg:
            tg.start_soon(handle.wait)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        with anyio.move_on_after(0) as scope:
            await handle.wait()
        assert scope.cancelled_caught
        assert InviteState.running == handle.state
        await client.receive_notifications(example.completed)
        assert InviteState.completed == await handle.wait()


# -- the Client's lifetime -----------------------------------------------------------------


async def test_leaving_the_client_cancels_its_tasks_and_leaks_none() -> None:
    clock = VirtualClock()
    example = spec(4)
    cancelled: list[InviteState] = []

    async def stuck(handle: InviteHandle, step: callflow.Step) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(step.dest)
            raise

    before = {task.id for task in anyio.get_running_tasks()}
    async with open_client(InviteEndpoint(clock, accepted(example)), clock, on_state=stuck) as c:
        await invite_example(c, example)
        await anyio.wait_all_tasks_blocked()
        started = {task.id for task in anyio.get_running_tasks()} - before
        assert 2 <= len(started), "the timer and a callback lane run while open"
    assert before == {task.id for task in anyio.get_running_tasks()}
    assert [InviteState.running] == cancelled


async def test_wait_after_the_client_closed_raises_callflow_error() -> None:
    clock = VirtualClock()
    example = spec(4)
    async with open_client(InviteEndpoint(clock, accepted(example)), clock) as client:
        handle = await invite_example(client, example)
    with anyio.fail_after(10), pytest.raises(CallflowError, match="closed") as caught:
        await handle.wait()
    assert CallflowError is type(caught.value)


async def test_wait_in_progress_when_the_client_closes_raises_callflow_error() -> None:
    clock = VirtualClock()
    example = spec(4)
    errors: list[BaseException] = []

    async def wait_for(handle: InviteHandle) -> None:
        try:
            await handle.wait()
        except CallflowError as exc:
            errors.append(exc)

    # Real seconds, as a bound: the waiter must be woken by the close, not left hanging.
    with anyio.fail_after(10):
        async with (
            anyio.create_task_group() as tg,
            open_client(InviteEndpoint(clock, accepted(example)), clock) as client,
        ):
            handle = await invite_example(client, example)
            tg.start_soon(wait_for, handle)
            await anyio.wait_all_tasks_blocked()
    assert [CallflowError] == [type(e) for e in errors]


async def test_wait_on_a_finished_invite_still_answers_after_the_client_closed(
    virtual_clock: VirtualClock,
) -> None:
    example = spec(4)
    async with open_client(InviteEndpoint(virtual_clock, accepted(example)), virtual_clock) as c:
        handle = await invite_example(c, example)
        await c.receive_notifications(example.completed)
    assert InviteState.completed == await handle.wait()


async def test_given_http_client_is_used_with_its_base_url_and_left_open(
    virtual_clock: VirtualClock,
) -> None:
    example = spec(4)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    base = "https://graph.example.test/beta"
    async with httpx.AsyncClient(transport=endpoint.transport(), base_url=base) as http:
        async with callflow.Client(http, token=TOKEN, clock=virtual_clock) as client:
            await invite_example(client, example)
        assert not http.is_closed
    expected = f"{base}/communications/calls/{example.call_id}/participants/invite"
    assert [expected] == [str(r.url) for r in endpoint.requests]


async def test_given_http_client_without_base_url_is_sent_to_the_client_base_url(
    virtual_clock: VirtualClock,
) -> None:
    example = spec(4)
    endpoint = InviteEndpoint(virtual_clock, accepted(example))
    base = "https://graph.example.test/v1.0"
    async with (
        httpx.AsyncClient(transport=endpoint.transport()) as http,
        callflow.Client(http, base_url=base, token=TOKEN, clock=virtual_clock) as client,
    ):
        await invite_example(client, example)
    expected = f"{base}/communications/calls/{example.call_id}/participants/invite"
    assert [expected] == [str(r.url) for r in endpoint.requests]


@pytest.fixture
def made_http_clients(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Every httpx.AsyncClient callflow makes, each sent to a fresh endpoint (spec 4's 200)."""
    made: list[httpx.AsyncClient] = []
    real = httpx.AsyncClient

    def make(**options: Any) -> httpx.AsyncClient:
        endpoint = InviteEndpoint(VirtualClock(), accepted(spec(4)))
        made.append(real(transport=endpoint.transport(), **options))
        return made[-1]

    monkeypatch.setattr(httpx, "AsyncClient", make)
    return made


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param(None, GRAPH, id="Graph v1.0 by default"),
        pytest.param("https://graph.microsoft.com/beta/", "https://graph.microsoft.com/beta"),
    ],
)
async def test_without_http_client_callflow_makes_one_on_its_base_url_and_closes_it(
    base_url: str | None,
    expected: str,
    made_http_clients: list[httpx.AsyncClient],
    virtual_clock: VirtualClock,
) -> None:
    options: dict[str, Any] = {} if base_url is None else {"base_url": base_url}
    async with callflow.Client(token=TOKEN, clock=virtual_clock, **options) as client:
        handle = await invite_example(client, spec(4))
        [http] = made_http_clients
        assert not http.is_closed
    assert InviteState.running == handle.state
    assert expected == str(http.base_url).rstrip("/")
    assert http.is_closed


# -- the bearer token ----------------------------------------------------------------------


class AccessToken:
    """azure-identity's AccessToken, as far as callflow reads it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.expires_on = 4_102_444_800


class Credential:
    """A sync azure-identity credential: ``get_token(*scopes)``."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN)


class AsyncCredential(Credential):
    """An ``azure.identity.aio`` credential: ``await get_token(*scopes)``."""

    async def get_token(self, *scopes: str) -> AccessToken:  # type: ignore[override]
        await anyio.lowlevel.checkpoint()
        return super().get_token(*scopes)


async def _async_token() -> str:
    await anyio.lowlevel.checkpoint()
    return TOKEN


TOKEN_SOURCES = [
    pytest.param(lambda: TOKEN, id="str"),
    pytest.param(lambda: lambda: TOKEN, id="sync callable"),
    pytest.param(lambda: _async_token, id="async callable"),
    pytest.param(Credential, id="credential"),
    pytest.param(AsyncCredential, id="async credential"),
]


@pytest.mark.parametrize("make_source", TOKEN_SOURCES)
async def test_token_source_puts_the_bearer_token_on_the_request(
    make_source: Callable[[], callflow.TokenSource], virtual_clock: VirtualClock
) -> None:
    endpoint = InviteEndpoint(virtual_clock, accepted(spec(4)))
    async with open_client(endpoint, virtual_clock, token=make_source()) as client:
        await invite_example(client, spec(4))
    assert [f"Bearer {TOKEN}"] == endpoint.authorizations


@pytest.mark.parametrize("make_credential", [Credential, AsyncCredential])
async def test_credential_is_asked_for_the_graph_scope(
    make_credential: Callable[[], Credential], virtual_clock: VirtualClock
) -> None:
    credential = make_credential()
    endpoint = InviteEndpoint(virtual_clock, accepted(spec(4)))
    async with open_client(endpoint, virtual_clock, token=credential) as client:
        await invite_example(client, spec(4))
    assert [(callflow.GRAPH_SCOPE,)] == credential.scopes


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_token_callable_is_called_for_every_request(
    is_async: bool, virtual_clock: VirtualClock
) -> None:
    issued = iter(["first-token", "refreshed-token"])

    def next_token() -> str:
        return next(issued)

    async def next_token_async() -> str:
        await anyio.lowlevel.checkpoint()
        return next(issued)

    source: callflow.TokenSource = next_token_async if is_async else next_token
    endpoint = InviteEndpoint(virtual_clock, throttled("1"), accepted(spec(4)))
    async with open_client(endpoint, virtual_clock, token=source) as client:
        await invite_example(client, spec(4))
    assert ["Bearer first-token", "Bearer refreshed-token"] == endpoint.authorizations


async def test_no_token_sends_no_authorization_header(virtual_clock: VirtualClock) -> None:
    endpoint = InviteEndpoint(virtual_clock, accepted(spec(4)))
    async with open_client(endpoint, virtual_clock, token=None) as client:
        await invite_example(client, spec(4))
    assert [None] == endpoint.authorizations


async def test_token_provider_that_raises_fails_the_invite_unsent(
    virtual_clock: VirtualClock,
) -> None:
    def broken() -> str:
        raise RuntimeError(f"the vault refused; last token was {TOKEN}")

    endpoint = InviteEndpoint(virtual_clock, accepted(spec(4)))
    async with open_client(endpoint, virtual_clock, token=broken) as client:
        handle = await invite_example(client, spec(4))
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert [] == endpoint.requests
    assert FailureReason.unreachable == caught.value.failure.reason
    assert "RuntimeError" in caught.value.failure.message
    assert TOKEN not in str(caught.value)


async def test_token_never_appears_in_logs_reprs_or_errors(
    virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forbidden = httpx.Response(
        403, json={"error": {"code": "Forbidden", "message": "Not allowed."}}
    )
    endpoint = InviteEndpoint(virtual_clock, httpx.ConnectError, throttled("1"), forbidden)
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, spec(4))
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
        shown = [repr(client), repr(handle), str(caught.value), repr(caught.value)]
    shown += [repr(caught.value.failure), repr(caught.value.history), repr(client)]
    # The token was sent, and there was plenty of logging, from callflow and from httpx.
    assert 3 * [f"Bearer {TOKEN}"] == endpoint.authorizations
    loggers = {r.name for r in caplog.records}
    assert {"callflow", "httpx"} <= loggers
    assert any(r.levelno == logging.DEBUG and r.name == "callflow" for r in caplog.records)
    assert [] == [r.getMessage() for r in caplog.records if TOKEN in r.getMessage()]
    assert TOKEN not in caplog.text
    assert [] == [text for text in shown if TOKEN in text]
