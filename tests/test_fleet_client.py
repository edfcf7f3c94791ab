"""The Client's behaviour with a store, on both stores: MemoryStore and RedisStore.

The Client suite's scenarios (the spec's examples end to end, a decline, duplicates, a
notification that beats the answer, deadlines, a lost answer, 429s, clientContext reuse)
run once per store and per event loop, plus what only a shared store can do: two Clients
on one store, as two bot instances, each given the other's notifications, the same
duplicate at once, one deadline between them, and ``attach``. Redis is a real
redis-server (see ``redis_support``); time is wall-clock time (the store's clock), so
deadlines here are fractions of a second.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

import callflow
from callflow import (
    Deadlines,
    DeliveryOutcome,
    FailureReason,
    InviteError,
    InviteFailed,
    InviteState,
    _resp,
)
from callflow._redis import _APPEND, _CLAIM_DUE, RedisStore, _sha
from callflow._store import MemoryStore, Store, UnknownInvite
from callflow.testing import VirtualClock
from test_client import (
    ALL,
    GRAPH,
    TOKEN,
    Answer,
    InviteEndpoint,
    accepted,
    declined,
    invite_example,
    is_replacing,
    outcomes,
    path,
    spec,
    teardown,
    throttled,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

NewStore = Callable[[], Store]


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store(store_kind: str, request: pytest.FixtureRequest) -> NewStore:
    """Makes handles on ONE store: the same MemoryStore, or new connections to one Redis."""
    if store_kind == "memory":
        shared = MemoryStore()
        return lambda: shared
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    return lambda: RedisStore(url, prefix=prefix)


@asynccontextmanager
async def instance(
    new_store: NewStore, *answers: Answer, **options: Any
) -> AsyncIterator[tuple[callflow.Client, InviteEndpoint]]:
    """One bot instance: a Client on the store, its POSTs answered by ``answers``."""
    endpoint = InviteEndpoint(VirtualClock(), *answers)
    options.setdefault("token", TOKEN)
    async with (
        httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http,
        callflow.Client(http, store=new_store(), **options) as client,
    ):
        yield client, endpoint


def steps(handle: callflow.InviteHandle) -> list[tuple[InviteState, bool]]:
    return [(s.dest, s.ignored) for s in handle.history]


# -- the Client suite's scenarios, on a store -----------------------------------------------


@pytest.mark.parametrize("number", ALL)
async def test_spec_example_runs_end_to_end(number: int, new_store: NewStore) -> None:
    example = spec(number)
    async with instance(new_store, accepted(example)) as (client, endpoint):
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
    expected = [InviteState.running, InviteState.completed]
    if is_replacing(example):
        expected.insert(1, InviteState.tearing_down_original)
    assert expected == path(handle)
    assert 1 == len(endpoint.requests)


async def test_declined_invite_raises_invite_failed_with_its_result_info(
    new_store: NewStore,
) -> None:
    example = spec(4)
    async with instance(new_store, accepted(example)) as (client, _):
        handle = await invite_example(client, example)
        await client.receive_notifications(declined(example))
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert failed.value.result_info is not None
    assert (403, 10004) == (failed.value.result_info.code, failed.value.result_info.subcode)


async def test_duplicate_notification_is_reported_and_changes_nothing(
    new_store: NewStore,
) -> None:
    example = spec(4)
    async with instance(new_store, accepted(example)) as (client, _):
        handle = await invite_example(client, example)
        first = await client.receive_notifications(example.completed)
        history = handle.history
        again = await client.receive_notifications(json.dumps(example.completed))
    assert [DeliveryOutcome.applied] == outcomes(first)
    assert [DeliveryOutcome.duplicate] == outcomes(again)
    assert history == handle.history


async def test_notification_that_beats_the_response_holds_against_the_late_200(
    new_store: NewStore,
) -> None:
    example = spec(4)
    opened: list[callflow.Client] = []

    async def notify_then_answer(request: httpx.Request) -> httpx.Response:
        receipt = await opened[0].receive_notifications(example.completed)
        assert [DeliveryOutcome.applied] == outcomes(receipt)
        return accepted(example)

    async with instance(new_store, notify_then_answer) as (client, _):
        opened.append(client)
        handle = await invite_example(client, example)
        assert InviteState.completed == handle.state
    assert [(InviteState.completed, False), (InviteState.completed, True)] == steps(handle)


async def test_an_invite_outliving_its_deadline_is_cancelled_then_fails(
    new_store: NewStore,
) -> None:
    example = spec(4)  # its answer names no participant id: the DELETE cannot be sent
    short = Deadlines(cancelling=0.3)
    async with instance(new_store, accepted(example), deadlines=short) as (client, _):
        handle = await invite_example(client, example, timeout=0.3)
        with anyio.fail_after(5), pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert failed.value.failure.reason is FailureReason.cancel_failed
    assert [InviteState.running, InviteState.cancelling, InviteState.failed] == path(handle)


async def test_a_lost_answer_is_never_resent_and_its_notification_completes_it(
    new_store: NewStore,
) -> None:
    example = spec(4)
    async with instance(new_store, httpx.ReadTimeout) as (client, endpoint):
        handle = await invite_example(client, example)
        assert InviteState.requested == handle.state
        await client.receive_notifications(example.completed)
        assert InviteState.completed == await handle.wait()
    assert 1 == len(endpoint.requests)


async def test_429_is_retried_after_retry_after_and_sent_once_more(new_store: NewStore) -> None:
    example = spec(4)
    async with instance(new_store, throttled("0"), accepted(example)) as (client, endpoint):
        handle = await invite_example(client, example)
        assert InviteState.running == handle.state
    assert 2 == len(endpoint.requests)


async def test_client_context_in_flight_is_refused_and_free_once_finished(
    new_store: NewStore,
) -> None:
    example = spec(4)
    async with instance(new_store, accepted(example)) as (client, endpoint):
        handle = await invite_example(client, example)
        with pytest.raises(InviteError, match="already used by an invite in flight"):
            await invite_example(client, example)
        await client.receive_notifications(example.completed)
        await handle.wait()
        again = await invite_example(client, example)
        assert again.invite_id != handle.invite_id
        assert InviteState.running == again.state
    assert 2 == len(endpoint.requests)


async def test_unrecognised_and_unmatched_notifications_are_reported(
    new_store: NewStore,
) -> None:
    example = spec(4)
    stranger = json.loads(json.dumps(example.completed))
    stranger["value"][0]["resourceData"]["clientContext"] = "nobody"
    stranger["value"][0]["resourceUrl"] = stranger["value"][0]["resourceUrl"].replace(
        example.response["id"], "unknown-operation"
    )
    stranger["value"][0]["resourceData"]["id"] = "unknown-operation"
    async with instance(new_store, accepted(example)) as (client, _):
        receipt = await client.receive_notifications(stranger)
    assert [DeliveryOutcome.unmatched] == outcomes(receipt)


async def test_leaving_the_client_leaks_no_task(new_store: NewStore) -> None:
    example = spec(4)
    before = {task.id for task in anyio.get_running_tasks()}
    async with instance(new_store, accepted(example)) as (client, _):
        await invite_example(client, example)
        started = {task.id for task in anyio.get_running_tasks()} - before
        assert 3 <= len(started), "the timer, the subscriber and the claim loop run"
    assert before == {task.id for task in anyio.get_running_tasks()}


# -- what a shared store adds: two instances -------------------------------------------------


async def test_a_notification_to_the_other_instance_reaches_the_waiter_by_push(
    new_store: NewStore,
) -> None:
    example = spec(4)
    async with (
        instance(new_store, accepted(example)) as (sender, endpoint),
        instance(new_store, accepted(example)) as (other, other_endpoint),
    ):
        handle = await invite_example(sender, example)
        receipt = await other.receive_notifications(example.completed)
        assert [DeliveryOutcome.applied] == outcomes(receipt)
        with anyio.fail_after(5):
            assert InviteState.completed == await handle.wait()
    assert (1, 0) == (len(endpoint.requests), len(other_endpoint.requests))


async def test_the_same_duplicate_to_two_instances_at_once_applies_once(
    new_store: NewStore,
) -> None:
    example = spec(4)
    receipts: list[callflow.Receipt] = []
    async with (
        instance(new_store, accepted(example)) as (one, _),
        instance(new_store, accepted(example)) as (two, _),
    ):
        handle = await invite_example(one, example)

        async def deliver(client: callflow.Client) -> None:
            receipts.append(await client.receive_notifications(example.completed))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(deliver, one)
                tg.start_soon(deliver, two)
        with anyio.fail_after(5):
            assert InviteState.completed == await handle.wait()
        stored = await one.store.inputs(handle.invite_id)  # type: ignore[union-attr]
    applied = [o for r in receipts for o in outcomes(r)].count(DeliveryOutcome.applied)
    assert 1 == applied
    assert ["invite", "response", "notification"] == [e["type"] for e in stored]


async def test_a_deadline_fires_once_between_two_instances(new_store: NewStore) -> None:
    example = spec(4)
    short = Deadlines(cancelling=0.3)
    async with (
        instance(new_store, accepted(example), deadlines=short) as (one, _),
        instance(new_store, accepted(example), deadlines=short) as (two, _),
    ):
        handle = await invite_example(one, example, timeout=0.3)
        with anyio.fail_after(5), pytest.raises(InviteFailed):
            await handle.wait()
        await anyio.sleep(1.2)  # both claim loops have polled since
        stored = await two.store.inputs(handle.invite_id)  # type: ignore[union-attr]
    # running's deadline (it cancels) and cancelling's (no participant id to DELETE)
    assert ["invite", "response", "timeout", "timeout"] == [e["type"] for e in stored]


async def test_attach_from_another_instance_follows_the_invite_to_its_end(
    new_store: NewStore,
) -> None:
    example = spec(1)
    async with (
        instance(new_store, accepted(example)) as (sender, _),
        instance(new_store, accepted(example)) as (other, _),
    ):
        sent = await invite_example(sender, example)
        await sender.receive_notifications(example.completed)
        attached = await other.attach(example.request["clientContext"])
        assert (sent.invite_id, InviteState.tearing_down_original) == (
            attached.invite_id,
            attached.state,
        )
        await sender.receive_notifications(teardown(example))
        with anyio.fail_after(5):
            assert InviteState.completed == await attached.wait()
        with pytest.raises(UnknownInvite):
            await other.attach("no-such-client-context")


async def test_attach_without_a_store_is_refused() -> None:
    async with callflow.Client(token=TOKEN) as client:
        with pytest.raises(callflow.CallflowError, match="attach needs a store"):
            await client.attach("anything")


# -- callflow demo --store ---------------------------------------------------------------------


def _demo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from callflow._cli import main

    code = main(["demo", *args])
    return code, capsys.readouterr().out


def _untimed(out: str) -> str:
    """The demo's output without its timings: a run on Redis takes real time, and on a
    loaded machine a step lands tens of milliseconds late (the paths must be the same)."""
    return re.sub(r"\(\+\d+\.\d+s\)", "(+…)", out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_on_a_store_shows_what_the_embedded_demo_shows(
    backend: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded = _demo(capsys, "--backend", backend)
    assert 0 == embedded[0]
    assert embedded == _demo(capsys, "--backend", backend, "--store", "memory")
    if backend == "asyncio":  # on the real clock: ~15 s; trio's Redis runs are proved above
        on_redis = _demo(capsys, "--backend", backend, "--store", redis_url)
        assert (0, _untimed(embedded[1])) == (on_redis[0], _untimed(on_redis[1]))


def test_demo_refuses_a_store_url_it_cannot_use(capsys: pytest.CaptureFixture[str]) -> None:
    from callflow._cli import main

    assert 1 == main(["demo", "--store", "http://localhost:6379"])
    assert "not a Redis URL" in capsys.readouterr().err


async def test_a_cancel_asked_on_another_instance_sends_one_delete_and_ends_everywhere(
    new_store: NewStore,
) -> None:
    # The design: a cancel is an input like any other. The instance asked (here the one
    # that attached, not the sender) appends it; its move asks for the DELETE, and the
    # instance that made the move sends it, once. Every instance sees the end by a push.
    example = spec(4)
    answer = json.loads(accepted(example).content)  # with the participant's id to DELETE
    answer["participants"][0]["id"] = "c6a94ae7-b6bb-4bd8-8d36-dd73a3ba4f44"
    location = {"Location": accepted(example).headers["Location"]}
    async with (
        instance(new_store, httpx.Response(200, json=answer, headers=location)) as (
            sender,
            sender_endpoint,
        ),
        instance(new_store, httpx.Response(204)) as (asker, asker_endpoint),
    ):
        sent = await invite_example(sender, example)
        attached = await asker.attach(example.request["clientContext"])
        with anyio.fail_after(5):
            assert InviteState.cancelled == await attached.cancel()
            with pytest.raises(InviteFailed) as failed:
                await sent.wait()
        assert FailureReason.cancelled is failed.value.failure.reason
        assert InviteState.cancelled == sent.state
        stored = await sender.store.inputs(sent.invite_id)  # type: ignore[union-attr]
    assert ["POST"] == [r.method for r in sender_endpoint.requests]
    assert ["DELETE"] == [r.method for r in asker_endpoint.requests]
    assert ["invite", "response", "cancel", "delete_response"] == [e["type"] for e in stored]


# -- what Redis sees --------------------------------------------------------------------------


@asynccontextmanager
async def monitoring(redis_url: str, until: str) -> AsyncIterator[list[str]]:
    """Every command the server runs while inside (``MONITOR``), a line each, up to the
    first line with ``until`` in it (waited for on the way out)."""
    address = _resp.Address.from_url(redis_url)
    assert address is not None
    lines: list[str] = []
    async with await anyio.connect_tcp(address.host, address.port) as stream:
        await stream.send(b"MONITOR\r\n")
        buffered = b""
        while b"+OK\r\n" not in buffered:
            buffered += await stream.receive()

        arrived = anyio.Event()

        async def read() -> None:
            pending = buffered.split(b"+OK\r\n", 1)[1]
            while True:
                *done, pending = pending.split(b"\r\n")
                lines.extend(line.decode() for line in done)
                if any(until in line for line in lines):
                    arrived.set()
                pending += await stream.receive()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            yield lines
            with anyio.fail_after(5):
                await arrived.wait()
            tg.cancel_scope.cancel()


async def test_a_notification_is_one_redis_command_on_the_instance_that_sent_its_invite(
    redis_url: str,
) -> None:
    example = spec(4)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    address = _resp.Address.from_url(redis_url)
    assert address is not None
    marker = _resp.Connection(address)
    async with instance(lambda: RedisStore(redis_url, prefix=prefix), accepted(example)) as (
        client,
        _,
    ):
        handle = await invite_example(client, example)
        async with monitoring(redis_url, until=f"{prefix}:after") as lines:
            await marker.call("ECHO", f"{prefix}:before")
            receipt = await client.receive_notifications(example.completed)
            await marker.call("ECHO", f"{prefix}:after")
        await marker.aclose()
    start = next(i for i, line in enumerate(lines) if f"{prefix}:before" in line)
    end = next(i for i, line in enumerate(lines) if f"{prefix}:after" in line)
    # What the client sent (not the script's own calls, "[0 lua]"), but the deadline
    # claims its loop may make meanwhile.
    sent = [line.split('"')[1:4:2] for line in lines[start + 1 : end] if " lua] " not in line]
    sent = [command for command in sent if command != ["EVALSHA", _sha(_CLAIM_DUE)]]

    assert [DeliveryOutcome.applied] == outcomes(receipt)
    assert handle.state is InviteState.completed
    assert [["EVALSHA", _sha(_APPEND)]] == sent
