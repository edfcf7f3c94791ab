"""The engine under unlucky and hostile conditions (issue 17, items 1 to 5).

Adversarial classes kept in the suite so the defects they found stay found:

* a clientContext reused in every phase of the invite that had it first;
* deadlines with a transport that never answers and a token provider that never returns;
* the caller cancelled in every ``await`` of :meth:`Client.invite`;
* the Client closed while sends are pending;
* news about a clientContext that arrived before its invite existed.

Time is a :class:`~callflow.testing.VirtualClock`: the autojump one (``virtual_clock``) where
the test only waits for outcomes, a hand-moved one where the test must act at a chosen
moment (between a 429 and its retry). Every test runs on asyncio and on trio.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
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
    Step,
    Trigger,
)
from callflow.testing import Operation, VirtualClock, operation_notification, response_body
from test_client import GRAPH, TOKEN, InviteEndpoint, participants_of, spec, throttled

pytestmark = pytest.mark.anyio

EXAMPLE = spec(4)
CALL_ID = EXAMPLE.call_id
CONTEXT = "same"
PARTICIPANTS = participants_of(EXAMPLE)


def operation(number: int, client_context: str = CONTEXT) -> Operation:
    """The operation the service makes of the ``number``-th POST."""
    return Operation(
        id=f"op-{number}",
        call_id=CALL_ID,
        client_context=client_context,
        participants=PARTICIPANTS,
    )


class Service:
    """An invite endpoint that takes every POST as a new operation (op-1, op-2, ...)."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        context = json.loads(request.content)["clientContext"]
        op = operation(len(self.operations) + 1, context)
        self.operations.append(op)
        return httpx.Response(200, json=response_body(op))


def completed(op: Operation) -> dict[str, Any]:
    return operation_notification(op)


def declined(op: Operation) -> dict[str, Any]:
    info = {"code": 603, "subcode": 0, "message": "Declined"}
    return operation_notification(op, result_info=info)


async def hang(request: httpx.Request) -> httpx.Response:
    """A transport that never answers (an HTTP client with ``timeout=None``)."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


class States:
    """An ``on_state`` callback that keeps every (invite id, step) it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Step]] = []

    def __call__(self, handle: InviteHandle, step: Step) -> None:
        self.seen.append((handle.invite_id, step))

    def of(self, invite_id: str) -> list[InviteState]:
        return [step.dest for key, step in self.seen if key == invite_id]

    def only(self) -> str:
        """The id of the one invite seen."""
        [invite_id] = {key for key, _ in self.seen}
        return invite_id


@asynccontextmanager
async def client_on(
    endpoint: InviteEndpoint, clock: VirtualClock, **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, callflow.Client]]:
    """A Client whose requests go to ``endpoint``; the HTTP client outlives the Client."""
    options.setdefault("token", TOKEN)
    async with httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http:
        yield http, callflow.Client(http, clock=clock, **options)


async def invite(client: callflow.Client, context: str = CONTEXT, **options: Any) -> InviteHandle:
    return await client.invite(CALL_ID, PARTICIPANTS, client_context=context, **options)


async def settle() -> None:
    """Let every task run until all wait (on a hand-moved clock: until time must move)."""
    await anyio.wait_all_tasks_blocked()


async def advance(clock: VirtualClock, seconds: float) -> None:
    """Move a hand-moved clock on in small steps, letting everything run at each."""
    end = clock.now() + seconds
    while clock.now() < end:
        clock.advance_to(min(end, clock.now() + 1.0))
        await settle()


# -- 1. a clientContext reused in every phase ---------------------------------------------


async def test_reuse_after_completion_is_tracked_to_its_own_end(
    virtual_clock: VirtualClock,
) -> None:
    service = Service()
    recorder = callflow.MemoryRecorder()
    states = States()
    endpoint = InviteEndpoint(virtual_clock, service)
    async with client_on(endpoint, virtual_clock) as (_, bare):
        client = callflow.Client(
            bare._http,
            token=TOKEN,
            clock=virtual_clock,
            release_after=60.0,
            recorder=recorder,
            on_state=states,
        )
        async with client:
            first = await invite(client)
            await client.receive_notifications(completed(service.operations[0]))
            assert InviteState.completed == await first.wait()
            await virtual_clock.sleep(30.0)
            second = await invite(client)  # within the first one's release_after
            await virtual_clock.sleep(40.0)  # the first one's release comes and goes
            receipt = await client.receive_notifications(completed(service.operations[1]))
            assert [DeliveryOutcome.applied] == [d.outcome for d in receipt.deliveries]
            with anyio.fail_after(5):
                assert InviteState.completed == await second.wait()
            await virtual_clock.sleep(61.0)  # the second one's release
            assert client.switchboard.get(CONTEXT) is None
    assert [InviteState.running, InviteState.completed] == states.of(second.invite_id)
    results = [e for e in recorder.events if e["type"] == "result"]
    assert [(first.invite_id, "completed"), (second.invite_id, "completed")] == [
        (e["invite_id"], e["state"]) for e in results
    ]


async def test_reuse_while_the_first_is_in_flight_is_refused_and_sends_nothing(
    virtual_clock: VirtualClock,
) -> None:
    service = Service()
    endpoint = InviteEndpoint(virtual_clock, service)
    async with client_on(endpoint, virtual_clock) as (_, client), client:
        first = await invite(client)
        with pytest.raises(InviteError, match="already used by an invite in flight"):
            await invite(client)
        assert InviteState.running == first.state
    assert 1 == len(endpoint.requests)


@pytest.mark.parametrize("first_outcome", [completed, declined])
async def test_reuse_after_release_ignores_the_first_invites_redelivered_news(
    first_outcome: Callable[[Operation], dict[str, Any]], virtual_clock: VirtualClock
) -> None:
    service = Service()
    endpoint = InviteEndpoint(virtual_clock, service)
    async with client_on(endpoint, virtual_clock, release_after=5.0) as (_, client), client:
        first = await invite(client)
        await client.receive_notifications(first_outcome(service.operations[0]))
        assert first.state.is_terminal
        await virtual_clock.sleep(10.0)
        second = await invite(client)
        receipt = await client.receive_notifications(first_outcome(service.operations[0]))
        assert [DeliveryOutcome.late] == [d.outcome for d in receipt.deliveries]
        assert InviteState.running == second.state
        await client.receive_notifications(completed(service.operations[1]))
        assert InviteState.completed == await second.wait()


async def test_reuse_before_release_ignores_the_first_invites_redelivered_news(
    virtual_clock: VirtualClock,
) -> None:
    service = Service()
    endpoint = InviteEndpoint(virtual_clock, service)
    async with client_on(endpoint, virtual_clock, release_after=60.0) as (_, client), client:
        first = await invite(client)
        await client.receive_notifications(declined(service.operations[0]))
        second = await invite(client)
        receipt = await client.receive_notifications(declined(service.operations[0]))
        assert [DeliveryOutcome.late] == [d.outcome for d in receipt.deliveries]
        assert (InviteState.failed, InviteState.running) == (first.state, second.state)


# -- 2. deadlines with a hanging transport or token provider ---------------------------------


SHORT = Deadlines(requested=5.0, running=5.0, tearing_down_original=5.0, cancelling=5.0)


async def test_invite_returns_by_its_deadline_when_the_transport_never_answers(
    virtual_clock: VirtualClock,
) -> None:
    endpoint = InviteEndpoint(virtual_clock, hang)
    async with client_on(endpoint, virtual_clock, deadlines=SHORT) as (_, client), client:
        handle = await invite(client)
        # requested (5 s) -> cancelling: the answer would name the participant to DELETE;
        # cancelling (5 s) -> failed: it never came, the participant may be ringing.
        assert 10.0 == virtual_clock.now()
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert [
        (Trigger.timed_out, InviteState.requested, InviteState.cancelling),
        (Trigger.timed_out, InviteState.cancelling, InviteState.failed),
    ] == [(s.trigger, s.source, s.dest) for s in failed.value.history]
    assert FailureReason.cancel_failed == failed.value.failure.reason
    assert 1 == len(endpoint.requests)


async def test_invite_returns_by_its_deadline_when_the_token_provider_never_returns(
    virtual_clock: VirtualClock,
) -> None:
    async def token() -> str:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    endpoint = InviteEndpoint(virtual_clock, hang)
    async with (
        client_on(endpoint, virtual_clock, deadlines=SHORT, token=token) as (_, client),
        client,
    ):
        handle = await invite(client, timeout=3.0)
        assert 3.0 == virtual_clock.now()
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert FailureReason.timeout == failed.value.failure.reason
    assert [] == endpoint.requests


async def test_invite_returns_by_its_deadline_on_real_time_with_no_http_timeout() -> None:
    endpoint = InviteEndpoint(VirtualClock(), hang)
    deadlines = Deadlines(requested=0.2, running=0.2, tearing_down_original=0.2, cancelling=0.2)
    async with (
        httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH, timeout=None) as http,
        callflow.Client(http, token=TOKEN, deadlines=deadlines) as client,
    ):
        with anyio.fail_after(10):  # a guard against the hang, not a speed check
            handle = await invite(client)
        assert InviteState.failed == handle.state


async def test_an_invite_decided_while_its_post_hangs_returns_by_the_send_deadline(
    virtual_clock: VirtualClock,
) -> None:
    endpoint = InviteEndpoint(virtual_clock, hang)
    op = operation(1)
    async with client_on(endpoint, virtual_clock, deadlines=SHORT) as (_, client), client:

        async def notify() -> None:
            await virtual_clock.sleep(1.0)
            await client.receive_notifications(completed(op))

        async with anyio.create_task_group() as tg:
            tg.start_soon(notify)
            handle = await invite(client)
        assert 5.0 == virtual_clock.now()
        assert InviteState.completed == handle.state


# -- 3. the caller cancelled in every await of invite() --------------------------------------


async def cancel_when(
    client: callflow.Client, reached: anyio.Event, context: str = CONTEXT
) -> None:
    """Call invite() in a scope, and cancel it once ``reached`` is set."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel() -> None:
                await reached.wait()
                scope.cancel()

            tg.start_soon(cancel)
            await invite(client, context)
    assert scope.cancelled_caught


async def test_cancelled_while_the_token_is_fetched_fails_unsent_and_frees_the_context() -> None:
    clock = VirtualClock()
    reached = anyio.Event()
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            reached.set()
            await anyio.sleep_forever()
        return TOKEN

    states = States()
    endpoint = InviteEndpoint(clock, Service())
    async with client_on(endpoint, clock, token=token, on_state=states) as (_, client), client:
        await cancel_when(client, reached)
        await settle()
        assert [InviteState.failed] == states.of(states.only())
        again = await invite(client)
        assert InviteState.running == again.state
    assert 1 == len(endpoint.requests)
    failed = states.seen[0][1]
    assert "invite() was cancelled before the POST was sent" == failed.cause


async def test_cancelled_during_a_429_back_off_fails_unsent_and_no_retry_follows() -> None:
    clock = VirtualClock()
    service = Service()
    reached = anyio.Event()

    async def throttle(request: httpx.Request) -> httpx.Response:
        reached.set()
        return throttled("10")

    states = States()
    endpoint = InviteEndpoint(clock, throttle, service)
    async with client_on(endpoint, clock, on_state=states) as (_, client), client:
        await cancel_when(client, reached)
        await settle()
        [orphan] = {key for key, _ in states.seen}
        assert [InviteState.failed] == states.of(orphan)
        again = await invite(client)  # the service took nothing: the context is free
        assert InviteState.running == again.state
        await advance(clock, 30.0)  # past the first invite's Retry-After
    assert [0.0, 0.0] == endpoint.times
    assert [1] == [len(service.operations)]


async def test_cancelled_while_the_post_is_in_flight_keeps_tracking_an_unknown_outcome() -> None:
    clock = VirtualClock()
    reached = anyio.Event()

    async def take_and_hang(request: httpx.Request) -> httpx.Response:
        reached.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    states = States()
    endpoint = InviteEndpoint(clock, take_and_hang)
    async with client_on(endpoint, clock, on_state=states) as (_, client), client:
        await cancel_when(client, reached)
        await settle()
        held = client.switchboard.get(CONTEXT)
        assert held is not None
        assert (InviteState.requested, Trigger.response_unknown) == (
            held.state,
            held.history[-1].trigger,
        )
        with pytest.raises(InviteError, match="in flight"):
            await invite(client)  # the service may have it: not sent twice
        await client.receive_notifications(completed(operation(1)))
        await settle()
        assert [InviteState.completed] == states.of(held.invite_id)
    assert 1 == len(endpoint.requests)


async def test_cancelled_while_the_post_is_in_flight_fails_outcome_unknown_at_the_deadline(
    virtual_clock: VirtualClock,
) -> None:
    reached = anyio.Event()

    async def take_and_hang(request: httpx.Request) -> httpx.Response:
        reached.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    states = States()
    endpoint = InviteEndpoint(virtual_clock, take_and_hang)
    async with (
        client_on(endpoint, virtual_clock, on_state=states, deadlines=SHORT) as (_, client),
        client,
    ):
        await cancel_when(client, reached)
        await virtual_clock.sleep(6.0)
        held = client.switchboard.get(CONTEXT)
        assert held is not None
        assert held.failure is not None
        assert FailureReason.outcome_unknown == held.failure.reason
        assert [InviteState.failed] == states.of(held.invite_id)


# -- 4. the Client closed while work is pending --------------------------------------------


async def close_while_sending(
    endpoint: InviteEndpoint, clock: VirtualClock, **options: Any
) -> CallflowError:
    """A bot task calls invite(); the Client closes under it; what invite() raised.

    The bot task runs outside the Client's block (it outlives it), and the HTTP client
    outlives both, so a POST sent after the close would reach ``endpoint``.
    """
    errors: list[CallflowError] = []

    async def bot(client: callflow.Client) -> None:
        try:
            await invite(client)
        except CallflowError as exc:
            errors.append(exc)

    async with contextlib.AsyncExitStack() as stack:
        client = options.pop("client", None)
        if client is None:
            _, client = await stack.enter_async_context(client_on(endpoint, clock, **options))
        async with anyio.create_task_group() as tg, client:
            tg.start_soon(bot, client)
            await settle()
        await advance(clock, 30.0)  # any Retry-After passes: no POST may follow
    [error] = errors
    return error


async def test_closing_during_a_429_back_off_sends_nothing_after_the_close() -> None:
    clock = VirtualClock()
    endpoint = InviteEndpoint(clock, throttled("10"), Service())
    error = await close_while_sending(endpoint, clock)
    assert "closed while invite" in str(error)
    assert "before the POST was sent" in str(error)
    assert [0.0] == endpoint.times


async def test_a_state_change_after_the_close_is_not_called_back_but_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    states = States()
    endpoint = InviteEndpoint(clock, throttled("10"))
    async with client_on(endpoint, clock, on_state=states) as (_, client):
        await close_while_sending(endpoint, clock, client=client)
    assert [] == states.seen
    assert {"on_state": 1} == dict(client.callbacks_dropped)
    assert ["on_state not called: the Client is closed"] == [
        r.getMessage() for r in caplog.records if "not called" in r.getMessage()
    ]


async def test_closing_while_the_post_is_in_flight_leaves_its_outcome_unknown() -> None:
    clock = VirtualClock()
    recorder = callflow.MemoryRecorder()
    endpoint = InviteEndpoint(clock, hang)
    error = await close_while_sending(endpoint, clock, recorder=recorder)
    assert "outcome unknown" in str(error)
    [result] = [e for e in recorder.events if e["type"] == "result"]
    assert "requested" == result["state"]
    assert 1 == len(endpoint.requests)


async def test_closing_while_the_token_provider_hangs_fails_the_invite_unsent() -> None:
    clock = VirtualClock()
    recorder = callflow.MemoryRecorder()

    async def token() -> str:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    endpoint = InviteEndpoint(clock, Service())
    error = await close_while_sending(endpoint, clock, token=token, recorder=recorder)
    assert "before the POST was sent" in str(error)
    [result] = [e for e in recorder.events if e["type"] == "result"]
    assert "failed" == result["state"]
    assert [] == endpoint.requests


async def test_invite_after_the_client_closed_raises_and_sends_nothing(
    virtual_clock: VirtualClock,
) -> None:
    endpoint = InviteEndpoint(virtual_clock, Service())
    async with client_on(endpoint, virtual_clock) as (_, client):
        async with client:
            pass
        with pytest.raises(CallflowError, match="not open"):
            await invite(client)
    assert [] == endpoint.requests


# -- 5. news older than the POST ------------------------------------------------------------


async def test_backlogged_news_older_than_the_post_does_not_decide_the_new_invite(
    virtual_clock: VirtualClock,
) -> None:
    service = Service()
    unmatched: list[callflow.Delivery] = []
    endpoint = InviteEndpoint(virtual_clock, service)
    stale = declined(operation(99))  # about clientContext "same", before any invite had it
    async with (
        client_on(endpoint, virtual_clock, on_unmatched=unmatched.append) as (_, client),
        client,
    ):
        receipt = await client.receive_notifications(stale)
        assert [DeliveryOutcome.backlogged] == [d.outcome for d in receipt.deliveries]
        handle = await invite(client)
        assert InviteState.running == handle.state
        assert () == client.switchboard.backlog
        await client.receive_notifications(completed(service.operations[0]))
        assert InviteState.completed == await handle.wait()
    assert 1 == len(endpoint.requests)
    [report] = unmatched
    assert DeliveryOutcome.unmatched == report.outcome
    assert "before its POST" in report.reason
    assert handle.invite_id in report.reason


def test_the_switchboard_alone_still_delivers_the_backlog_when_told_nothing() -> None:
    # A sans-I/O user may register an invite after sending it: then the backlog applies.
    board = callflow.Switchboard()
    board.receive(completed(operation(1)), at=0.0)
    receipt = board.add(callflow.Invite(CALL_ID, PARTICIPANTS, client_context=CONTEXT), at=1.0)
    assert [DeliveryOutcome.applied] == [d.outcome for d in receipt.deliveries]


def test_before_post_reports_each_older_entry_for_its_keys_as_unmatched() -> None:
    board = callflow.Switchboard()
    other = declined(operation(7, "another"))
    board.receive(declined(operation(1)), at=0.0)
    board.receive(other, at=0.0)
    invite_ = callflow.Invite(CALL_ID, PARTICIPANTS, client_context=CONTEXT)
    receipt = board.add(invite_, at=1.0, before_post=True)
    assert [DeliveryOutcome.unmatched] == [d.outcome for d in receipt.deliveries]
    assert InviteState.requested == invite_.state
    body = copy.deepcopy(other)
    assert [body["value"][0]] == [n.to_json() for n in board.backlog]
