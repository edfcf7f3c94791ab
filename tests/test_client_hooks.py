"""Callbacks: on_state, on_roster and on_unmatched, sync or async.

They run in one lane per call: in arrival order for a call, independently across calls;
one that raises is logged and kept, and the invite goes on. These tests move a
:class:`~callflow.testing.VirtualClock` by hand (no autojump), so that
``anyio.wait_all_tasks_blocked()`` means "every callback that can run has run" and
time moves only when a test says so.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from typing import Any

import anyio
import httpx
import pytest

from callflow import (
    Delivery,
    DeliveryOutcome,
    InviteHandle,
    InviteState,
    NotificationKind,
    Step,
)
from callflow._core._notifications import CommsNotification
from callflow.testing import VirtualClock
from test_client import (
    Body,
    InviteEndpoint,
    accepted,
    commsnotifications,
    invite_example,
    open_client,
    operation_url,
    spec,
    teardown,
)

pytestmark = pytest.mark.anyio

EXAMPLE = spec(4)


def phone(n: int) -> Body:
    """A PSTN participant, shaped like example 4's."""
    participant: Body = copy.deepcopy(EXAMPLE.request["participants"][0])
    participant["identity"]["phone"]["id"] = f"+1425555{n:04d}"
    return participant


async def answer_with_operation(request: httpx.Request) -> httpx.Response:
    """Example 4's 200, retold for the invite in ``request`` (operation ``op-{context}``)."""
    await anyio.lowlevel.checkpoint()  # let concurrent invites interleave
    sent = json.loads(request.content)
    context = sent["clientContext"]
    call_id = request.url.path.split("/")[-3]
    body = {
        **EXAMPLE.response,
        "id": f"op-{context}",
        "clientContext": context,
        "participants": sent["participants"],
    }
    location = operation_url(call_id, f"op-{context}")
    return httpx.Response(200, json=body, headers={"Location": location})


def operation_update(call_id: str, context: str, status: str) -> Body:
    """Example 4's operation notification, retold for operation ``op-{context}``."""
    item = copy.deepcopy(EXAMPLE.completed["value"][0])
    item["resource"] = f"/app/calls/{call_id}/operations/op-{context}"
    item["resourceUrl"] = f"/communications/calls/{call_id}/operations/op-{context}"
    data = item["resourceData"]
    data.update(id=f"op-{context}", clientContext=context, status=status)
    if status == "failed":
        data["resultInfo"] = {"code": 408, "subcode": 10003, "message": "Not answered."}
    return commsnotifications(item)


# -- ordering ------------------------------------------------------------------------------


async def test_each_calls_callbacks_run_in_arrival_order_under_concurrency() -> None:
    rng = random.Random(20240611)
    clock = VirtualClock()
    calls = [f"call-{name}" for name in "abcd"]
    contexts = {call: [f"{call}-invite-{i}" for i in range(4)] for call in calls}
    pauses = {ctx: rng.randrange(6) for ctxs in contexts.values() for ctx in ctxs}
    seen: list[tuple[str, str, InviteState]] = []

    async def on_state(handle: InviteHandle, step: Step) -> None:
        for _ in range(pauses[handle.client_context]):
            await anyio.lowlevel.checkpoint()
        seen.append((handle.invite.call_id, handle.client_context, step.dest))

    endpoint = InviteEndpoint(clock, answer_with_operation)
    async with open_client(endpoint, clock, on_state=on_state) as client:

        async def invite_all(call: str) -> None:
            for n, context in enumerate(contexts[call]):
                await client.invite(call, [phone(n)], client_context=context)

        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(invite_all, call)
        updates = [
            (call, ctx, rng.choice(["completed", "failed"]))
            for call in calls
            for ctx in contexts[call]
        ]
        rng.shuffle(updates)
        for call, ctx, status in updates:
            await client.receive_notifications(operation_update(call, ctx, status))
        await anyio.wait_all_tasks_blocked()
    for call in calls:
        expected = [(ctx, InviteState.running) for ctx in contexts[call]]
        expected += [(ctx, InviteState(status)) for c, ctx, status in updates if c == call]
        assert expected == [(ctx, state) for c, ctx, state in seen if c == call]


async def test_slow_callback_on_one_call_does_not_delay_another_call() -> None:
    clock = VirtualClock()
    release_a = anyio.Event()
    seen: list[tuple[str, InviteState]] = []

    async def on_state(handle: InviteHandle, step: Step) -> None:
        if handle.invite.call_id == "call-a":
            await release_a.wait()
        seen.append((handle.invite.call_id, step.dest))

    endpoint = InviteEndpoint(clock, answer_with_operation)
    async with open_client(endpoint, clock, on_state=on_state) as client:
        a = await client.invite("call-a", [phone(1)], client_context="a")
        b = await client.invite("call-b", [phone(2)], client_context="b")
        await client.receive_notifications(operation_update("call-a", "a", "completed"))
        await client.receive_notifications(operation_update("call-b", "b", "completed"))
        assert InviteState.completed == await b.wait()
        await anyio.wait_all_tasks_blocked()
        assert [("call-b", InviteState.running), ("call-b", InviteState.completed)] == seen
        assert InviteState.completed == a.state, "a slow callback does not hold the invite"
        release_a.set()
        await anyio.wait_all_tasks_blocked()
    assert [("call-a", InviteState.running), ("call-a", InviteState.completed)] == seen[2:]


# -- each step once ------------------------------------------------------------------------


async def test_on_state_reports_a_step_once_when_its_notification_beats_the_response() -> None:
    clock = VirtualClock()
    opened: list[Any] = []
    seen: list[InviteState] = []

    async def notify_then_answer(request: httpx.Request) -> httpx.Response:
        await opened[0].receive_notifications(EXAMPLE.completed)
        return accepted(EXAMPLE)

    endpoint = InviteEndpoint(clock, notify_then_answer)
    on_state = lambda handle, step: seen.append(step.dest)  # noqa: E731
    async with open_client(endpoint, clock, on_state=on_state) as client:
        opened.append(client)
        await invite_example(client, EXAMPLE)
        await anyio.wait_all_tasks_blocked()
    assert [InviteState.completed] == seen


async def test_on_state_reports_every_step_of_a_body_that_moves_an_invite_twice() -> None:
    clock = VirtualClock()
    example = spec(1)
    seen: list[InviteState] = []
    both = commsnotifications(*example.completed["value"], *teardown(example)["value"])
    endpoint = InviteEndpoint(clock, accepted(example))
    on_state = lambda handle, step: seen.append(step.dest)  # noqa: E731
    async with open_client(endpoint, clock, on_state=on_state) as client:
        handle = await invite_example(client, example)
        await client.receive_notifications(both)
        assert InviteState.completed == await handle.wait()
        await anyio.wait_all_tasks_blocked()
    expected = [InviteState.running, InviteState.tearing_down_original, InviteState.completed]
    assert expected == seen


# -- a callback that raises ----------------------------------------------------------------


def make_faulty(is_async: bool, seen: list[InviteState]) -> Any:
    """An on_state callback that raises on ``running`` and records every other step."""

    def faulty(handle: InviteHandle, step: Step) -> None:
        if step.dest is InviteState.running:
            raise RuntimeError("bug in the bot's callback")
        seen.append(step.dest)

    async def faulty_async(handle: InviteHandle, step: Step) -> None:
        await anyio.lowlevel.checkpoint()
        faulty(handle, step)

    return faulty_async if is_async else faulty


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_raising_callback_is_logged_and_kept_in_callback_errors(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    callback = make_faulty(is_async, [])
    async with open_client(InviteEndpoint(clock, accepted(EXAMPLE)), clock, on_state=callback) as c:
        await invite_example(c, EXAMPLE)
        await anyio.wait_all_tasks_blocked()
        [(name, error)] = c.callback_errors
    assert callback.__qualname__ == name
    assert (RuntimeError, "bug in the bot's callback") == (type(error), str(error))
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "callflow" == record.name
    assert record.exc_info is not None
    assert error is record.exc_info[1]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_invite_completes_and_later_callbacks_run_after_one_raised(is_async: bool) -> None:
    clock = VirtualClock()
    seen: list[InviteState] = []
    callback = make_faulty(is_async, seen)
    async with open_client(InviteEndpoint(clock, accepted(EXAMPLE)), clock, on_state=callback) as c:
        handle = await invite_example(c, EXAMPLE)
        await c.receive_notifications(EXAMPLE.completed)
        assert InviteState.completed == await handle.wait()
        await anyio.wait_all_tasks_blocked()
        assert 1 == len(c.callback_errors)
    assert [InviteState.completed] == seen


# -- on_roster and on_unmatched ------------------------------------------------------------


async def test_on_roster_gets_the_roster_and_the_invites_it_concerns() -> None:
    clock = VirtualClock()
    example = spec(2)
    got: list[tuple[CommsNotification, tuple[InviteHandle, ...]]] = []

    async def on_roster(notification: CommsNotification, handles: tuple[InviteHandle, ...]) -> None:
        await anyio.lowlevel.checkpoint()
        got.append((notification, handles))

    endpoint = InviteEndpoint(clock, accepted(example))
    async with open_client(endpoint, clock, on_roster=on_roster) as client:
        handle = await invite_example(client, example)
        await client.receive_notifications(example.completed)
        await client.receive_notifications(example.roster)
        await anyio.wait_all_tasks_blocked()
    [(notification, handles)] = got
    assert (NotificationKind.roster, example.call_id) == (notification.kind, notification.call_id)
    assert example.roster["value"][0] == notification.to_json()
    assert (handle,) == handles


async def test_on_unmatched_hears_of_an_unknown_call_once_it_leaves_the_backlog() -> None:
    clock = VirtualClock()
    max_age = 30.0
    unmatched: list[tuple[float, Delivery]] = []

    def on_unmatched(delivery: Delivery) -> None:
        unmatched.append((clock.now(), delivery))

    endpoint = InviteEndpoint(clock, accepted(EXAMPLE))
    async with open_client(
        endpoint, clock, on_unmatched=on_unmatched, backlog_max_age=max_age
    ) as client:
        await anyio.wait_all_tasks_blocked()  # the webhook is called some time after opening
        receipt = await client.receive_notifications(EXAMPLE.roster)
        assert [DeliveryOutcome.backlogged] == [d.outcome for d in receipt.deliveries]
        clock.advance(max_age - 1)
        await anyio.wait_all_tasks_blocked()
        assert [] == unmatched
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
    [(at, delivery)] = unmatched
    assert (max_age, DeliveryOutcome.unmatched) == (at, delivery.outcome)
    assert EXAMPLE.roster["value"][0] == delivery.notification.to_json()


async def test_on_unmatched_gets_an_unrecognised_notification_at_once() -> None:
    clock = VirtualClock()
    unmatched: list[Delivery] = []

    async def on_unmatched(delivery: Delivery) -> None:
        await anyio.lowlevel.checkpoint()
        unmatched.append(delivery)

    call_id = EXAMPLE.call_id
    prompt = {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": "deleted",
        "resource": f"/app/calls/{call_id}/operations/0c7f8e6a-play",
        "resourceUrl": f"/communications/calls/{call_id}/operations/0c7f8e6a-play",
        "resourceData": {
            "@odata.type": "#microsoft.graph.playPromptOperation",
            "id": "0c7f8e6a-play",
            "status": "completed",
        },
    }
    endpoint = InviteEndpoint(clock, accepted(EXAMPLE))
    async with open_client(endpoint, clock, on_unmatched=on_unmatched) as client:
        await client.receive_notifications(commsnotifications(prompt))
        await anyio.wait_all_tasks_blocked()
        assert 0.0 == clock.now()
    [delivery] = unmatched
    assert DeliveryOutcome.unrecognised == delivery.outcome
    assert prompt == delivery.notification.to_json()
