"""The Store contract, proved on both stores: MemoryStore and RedisStore on a real Redis.

Every test runs on asyncio and trio, once per store. ``store`` and ``peer`` are two
handles on the same data: for Redis, two connections (two bot instances); for memory,
the one store (one process).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import callflow
from callflow._redis import RedisStore
from callflow._store import (
    Appended,
    ClientContextInFlight,
    MemoryStore,
    Snapshot,
    Store,
    StoreError,
    UnknownInvite,
    call_key,
    client_context_key,
    operation_key,
)
from spec_examples import Example

pytestmark = pytest.mark.anyio

CALL = "7531d31f-d10d-44de-802f-c569dbca451c"
REPLACED = "e5d39592-99bd-4db8-bca8-30fb894ec51d"
_ids = itertools.count()


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def stores(store_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[list[Store]]:
    if store_kind == "memory":
        async with MemoryStore() as memory:
            yield [memory, memory]
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:12]}"  # each test its own keyspace
    async with RedisStore(url, prefix=prefix) as one, RedisStore(url, prefix=prefix) as two:
        yield [one, two]


@pytest.fixture
def store(stores: list[Store]) -> Store:
    return stores[0]


@pytest.fixture
def peer(stores: list[Store]) -> Store:
    return stores[1]


def invite_event(invite_id: str, client_context: str, call_id: str = CALL) -> dict[str, Any]:
    request = {"clientContext": client_context, "participants": []}
    return {
        "type": "invite",
        "invite_id": invite_id,
        "client_context": client_context,
        "call_id": call_id,
        "request": request,
        "kind": "invite",
        "at": 0.0,
    }


def notification_event(invite_id: str, n: int) -> dict[str, Any]:
    return {"type": "notification", "invite_id": invite_id, "at": float(n), "notification": {}}


async def registered(store: Store, *, route_keys: tuple[str, ...] = ()) -> str:
    invite_id = f"invite-{next(_ids)}"
    context = f"context-{invite_id}"
    event = invite_event(invite_id, context)
    await store.register(
        invite_id, event, call_id=CALL, client_context=context, route_keys=route_keys
    )
    return invite_id


async def test_a_registered_invite_holds_its_invite_event_as_first_input(store: Store) -> None:
    event = invite_event("a", "ctx-a")
    await store.register("a", event, call_id=CALL, client_context="ctx-a")
    assert [event] == await store.inputs("a")


async def test_an_invite_is_routed_by_its_client_context_call_and_extra_keys(
    store: Store, peer: Store
) -> None:
    event = invite_event("a", "ctx-a")
    extra = (call_key(REPLACED),)
    await store.register("a", event, call_id=CALL, client_context="ctx-a", route_keys=extra)
    await store.add_routes("a", [operation_key("op-1")])
    keys = [client_context_key("ctx-a"), call_key(CALL), call_key(REPLACED), operation_key("op-1")]
    expected = dict.fromkeys(keys, ("a",))
    assert expected == await peer.route([*keys, operation_key("nobody")])


async def test_a_client_context_in_flight_is_refused_to_a_second_invite(
    store: Store, peer: Store
) -> None:
    await store.register("a", invite_event("a", "shared"), call_id=CALL, client_context="shared")
    with pytest.raises(ClientContextInFlight) as refused:
        await peer.register("b", invite_event("b", "shared"), call_id=CALL, client_context="shared")
    assert ("shared", "a") == (refused.value.client_context, refused.value.invite_id)
    assert isinstance(refused.value, ValueError)


async def test_a_released_client_context_can_be_used_again(store: Store) -> None:
    await store.register("a", invite_event("a", "shared"), call_id=CALL, client_context="shared")
    await store.release("a", ttl=60)
    await store.register("b", invite_event("b", "shared"), call_id=CALL, client_context="shared")
    assert ("a", "b") == (await store.route([client_context_key("shared")]))[
        client_context_key("shared")
    ]


async def test_the_same_invite_id_is_not_registered_twice(store: Store) -> None:
    await store.register("a", invite_event("a", "one"), call_id=CALL, client_context="one")
    with pytest.raises(StoreError, match="already registered"):
        await store.register("a", invite_event("a", "two"), call_id=CALL, client_context="two")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "response", "invite_id": "a"}, "must be an 'invite' event"),
        ({**invite_event("other", "ctx"), "invite_id": "other"}, "event of invite 'other'"),
    ],
)
async def test_a_first_input_that_is_not_this_invites_invite_event_is_refused(
    store: Store, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        await store.register("a", event, call_id=CALL, client_context="ctx")


async def test_an_input_is_appended_once_per_fingerprint(store: Store) -> None:
    invite_id = await registered(store)
    first = await store.append(invite_id, "n1", notification_event(invite_id, 1))
    again = await store.append(invite_id, "n1", notification_event(invite_id, 2))
    assert (Appended(new=True, count=2), Appended(new=False, count=2)) == (first, again)
    assert [1.0] == [e["at"] for e in await store.inputs(invite_id, start=1)]


async def test_the_same_duplicate_from_two_instances_at_once_is_appended_once(
    store: Store, peer: Store
) -> None:
    invite_id = await registered(store)
    results: list[Appended] = []

    async def deliver(via: Store, copy: int) -> None:
        results.append(await via.append(invite_id, "same", notification_event(invite_id, copy)))

    async with anyio.create_task_group() as group:
        for copy in range(20):
            group.start_soon(deliver, (store, peer)[copy % 2], copy)
    assert 1 == sum(r.new for r in results)
    assert 2 == len(await peer.inputs(invite_id))


async def test_an_unknown_invite_is_a_clear_error(store: Store) -> None:
    with pytest.raises(UnknownInvite, match="no invite 'ghost'"):
        await store.append("ghost", "n1", notification_event("ghost", 1))
    with pytest.raises(UnknownInvite):
        await store.inputs("ghost")


async def test_an_input_of_another_invite_is_refused(store: Store) -> None:
    invite_id = await registered(store)
    with pytest.raises(StoreError, match="cannot be stored as"):
        await store.append(invite_id, "n1", notification_event("someone-else", 1))


async def test_a_snapshot_given_with_an_append_is_kept_when_it_covers_exactly_the_inputs(
    store: Store,
) -> None:
    invite_id = await registered(store)
    running = Snapshot(version=2, state="running")
    stale = Snapshot(version=2, state="completed")  # folded without the input before it
    assert (await store.append(invite_id, "r", {"type": "response"}, snapshot=running)).saved
    assert not (await store.append(invite_id, "n", {"type": "timeout"}, snapshot=stale)).saved
    assert running == await store.snapshot(invite_id)


async def test_a_snapshot_is_kept_only_when_newer_and_covered_by_inputs(store: Store) -> None:
    invite_id = await registered(store)
    await store.append(invite_id, "r", {"type": "response"})
    assert await store.snapshot(invite_id) is None
    assert not await store.save_snapshot(invite_id, Snapshot(version=3, state="completed"))
    assert await store.save_snapshot(invite_id, Snapshot(version=2, state="running"))
    assert not await store.save_snapshot(invite_id, Snapshot(version=1, state="requested"))
    assert Snapshot(version=2, state="running") == await store.snapshot(invite_id)


async def test_a_kept_snapshot_is_pushed_to_a_watching_instances_subscriber(
    store: Store, peer: Store
) -> None:
    invite_id = await registered(store)
    done = Snapshot(version=2, state="completed", data={"result_code": 0})
    await peer.watch(invite_id)
    async with peer.subscribe() as changes:
        await store.append(invite_id, "n", notification_event(invite_id, 1), snapshot=done)
        with anyio.fail_after(5):
            change = await anext(aiter(changes))
    assert (invite_id, done) == (change.invite_id, change.snapshot)


async def test_a_due_deadline_is_claimed_by_exactly_one_of_two_instances(
    store: Store, peer: Store
) -> None:
    invite_ids = [await registered(store) for _ in range(30)]
    for n, invite_id in enumerate(invite_ids):
        await store.schedule(invite_id, at=float(n))
    claimed: list[list[str]] = [[], []]

    async def claim(which: int) -> None:
        via = (store, peer)[which]
        for _ in range(10):
            claimed[which] += [d.invite_id for d in await via.claim_due(100.0, lease=30, limit=2)]

    async with anyio.create_task_group() as group:
        group.start_soon(claim, 0)
        group.start_soon(claim, 1)
    assert sorted(invite_ids) == sorted(claimed[0] + claimed[1])
    assert [] == await store.claim_due(100.0, lease=30)


async def test_a_deadline_not_yet_due_is_not_claimed_and_a_lapsed_claim_falls_due_again(
    store: Store, peer: Store
) -> None:
    invite_id = await registered(store)
    await store.schedule(invite_id, at=10.0)
    assert [] == await store.claim_due(9.5, lease=5)
    assert [invite_id] == [d.invite_id for d in await store.claim_due(10.0, lease=5)]
    assert [] == await peer.claim_due(14.0, lease=5)  # the lease holds
    assert [(invite_id, 15.0)] == [(d.invite_id, d.at) for d in await peer.claim_due(15, lease=5)]


async def test_a_deadline_moved_or_set_twice_is_claimed_once_at_its_latest_time(
    store: Store,
) -> None:
    invite_id = await registered(store)
    for at in (5.0, 5.0, 8.0, 3.0):
        await store.schedule(invite_id, at=at)
    assert [(invite_id, 3.0)] == [(d.invite_id, d.at) for d in await store.claim_due(9, lease=5)]
    assert [] == await store.claim_due(13.5, lease=5)


async def test_an_append_whose_snapshot_is_kept_sets_the_deadline_in_the_same_step(
    store: Store, peer: Store
) -> None:
    invite_id = await registered(store)
    await store.schedule(invite_id, at=50.0)
    kept = await store.append(
        invite_id,
        "a",
        notification_event(invite_id, 1),
        snapshot=Snapshot(version=2, state="running"),
        deadline=7.0,
    )
    # Not kept (a stale version): the deadline stays where it was.
    stale = await peer.append(
        invite_id,
        "b",
        notification_event(invite_id, 2),
        snapshot=Snapshot(version=2, state="failed"),
        deadline=1.0,
    )
    assert (kept.saved, stale.saved) == (True, False)
    assert [(invite_id, 7.0)] == [(d.invite_id, d.at) for d in await store.claim_due(9, lease=5)]


async def test_a_released_invite_has_no_deadline_and_no_call_route(store: Store) -> None:
    invite_id = await registered(store, route_keys=(call_key(REPLACED),))
    await store.schedule(invite_id, at=1.0)
    await store.release(invite_id, ttl=60)
    assert [] == await store.claim_due(100.0, lease=5)
    routes = await store.route([call_key(CALL), call_key(REPLACED)])
    assert {} == routes
    context = (await store.inputs(invite_id))[0]["client_context"]
    assert {client_context_key(context): (invite_id,)} == await store.route(
        [client_context_key(context)]
    )


async def test_a_released_invite_vanishes_after_its_ttl(store: Store) -> None:
    invite_id = await registered(store)
    await store.add_routes(invite_id, [operation_key("op-ttl")])
    await store.release(invite_id, ttl=0.2)
    assert 1 == len(await store.inputs(invite_id))  # still there: late inputs are late
    await anyio.sleep(0.6)
    with pytest.raises(UnknownInvite):
        await store.inputs(invite_id)
    assert {} == await store.route([operation_key("op-ttl")])


async def test_replaying_the_stored_inputs_rebuilds_the_invite(
    store: Store, spec: dict[int, Example]
) -> None:
    example = spec[4]
    context = example.request["clientContext"]
    event = {"type": "invite", "invite_id": "s4", "call_id": example.call_id, "at": 0.0}
    event |= {"request": example.request, "client_context": context, "kind": "invite"}
    await store.register("s4", event, call_id=example.call_id, client_context=context)
    answer = {"type": "response", "status_code": 200, "headers": {}, "body": example.response}
    await store.append("s4", "answer", {**answer, "at": 1.0})
    for n, notification in enumerate(example.completed["value"]):
        note = {"type": "notification", "notification": notification, "at": 2.0 + n}
        await store.append("s4", f"n{n}", note)
    invite = callflow.replay(await store.inputs("s4"))
    assert callflow.InviteState.completed == invite.state
