"""What only RedisStore has: its cluster key layout, its memory per invite, its URL."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import coredis
import pytest

from callflow._redis import RedisStore, _json
from callflow._store import Snapshot, StoreError, UnknownInvite, call_key, operation_key
from redis_support import RedisUnavailable, free_port, running_cluster, running_server
from spec_examples import Example

pytestmark = pytest.mark.anyio

#: What one in-flight invite may take in Redis besides its inputs' own JSON (the issue
#: asks memory be bounded and stated): record, dedupe set, routes, claim, locator.
OVERHEAD_BUDGET = 2560


@pytest.fixture(scope="module")
def cluster_port() -> Iterator[int]:
    """A redis-server in cluster mode (one node is enough to ask CLUSTER KEYSLOT)."""
    # The cluster bus port is the port + 10000 unless given: give a free one.
    bus = str(free_port())
    with running_server("--cluster-enabled", "yes", "--cluster-port", bus) as port:
        yield port


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    """A real three-master Redis Cluster on loopback."""
    with running_cluster(3) as port:
        yield f"redis://127.0.0.1:{port}"


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    async with RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex[:12]}") as store:
        yield store


async def spec_invite(store: RedisStore, example: Example, invite_id: str) -> None:
    """Example 4 as it sits in flight: its invite event, its 200 answer, its notification."""
    context = example.request["clientContext"]
    event: dict[str, Any] = {"type": "invite", "invite_id": invite_id, "at": 0.0}
    event |= {"call_id": example.call_id, "request": example.request, "kind": "invite"}
    await store.register(invite_id, event, call_id=example.call_id, client_context=context)
    await store.add_routes(invite_id, [operation_key(example.response["id"])])
    answer = {"type": "response", "status_code": 200, "headers": {}, "body": example.response}
    await store.append(invite_id, "answer", {**answer, "at": 1.0})
    note = {"type": "notification", "notification": example.completed["value"][0], "at": 2.0}
    await store.append(invite_id, "n0", note)


async def test_one_invites_keys_share_its_calls_hash_slot(cluster_port: int) -> None:
    store = RedisStore("redis://127.0.0.1:1/0", prefix="callflow")
    keys = store.keys_of("9f2c0b3e-invite", call_id="7531d31f-d10d-44de-802f-c569dbca451c")
    async with coredis.Redis(host="127.0.0.1", port=cluster_port, decode_responses=True) as r:
        slots = {await r.cluster_keyslot(key) for key in keys}
        other_call = await r.cluster_keyslot(
            store.keys_of("9f2c0b3e-invite", call_id="e5d39592-99bd-4db8-bca8-30fb894ec51d")[0]
        )
    assert 4 == len(keys)
    assert 1 == len(slots)
    assert slots != {other_call}  # the tag is the call: another call, another slot


async def test_an_in_flight_invite_takes_less_than_the_memory_budget(
    redis_store: RedisStore, spec: dict[int, Example]
) -> None:
    await spec_invite(redis_store, spec[4], "memory-probe")
    used = await redis_store.memory_usage("memory-probe")
    payload = sum(len(_json(e)) for e in await redis_store.inputs("memory-probe"))
    print(f"\nRedis memory, one in-flight invite (example 4): {used} B, {payload} B JSON")
    assert payload < used <= payload + OVERHEAD_BUDGET


async def test_a_replaced_calls_route_survives_until_the_last_invite_on_it_is_released(
    redis_store: RedisStore,
) -> None:
    for name in ("a", "b"):
        event = {"type": "invite", "invite_id": name, "call_id": f"call-{name}", "at": 0.0}
        await redis_store.register(
            name,
            event,
            call_id=f"call-{name}",
            client_context=f"ctx-{name}",
            route_keys=[call_key("replaced")],
        )
    await redis_store.release("a", ttl=60)
    assert {call_key("replaced"): ("b",)} == await redis_store.route([call_key("replaced")])


def test_a_url_that_is_not_redis_is_refused() -> None:
    with pytest.raises(StoreError, match="not a Redis URL"):
        RedisStore("http://127.0.0.1:6379")


def test_the_repr_never_shows_the_password() -> None:
    assert "s3cret" not in repr(RedisStore("redis://:s3cret@127.0.0.1:6379/0"))


async def test_a_store_used_before_it_is_opened_says_so() -> None:
    with pytest.raises(StoreError, match="async with RedisStore"):
        await RedisStore("redis://127.0.0.1:1/0").route([call_key("x")])


async def test_a_server_that_lost_its_scripts_is_given_them_again(
    redis_store: RedisStore,
) -> None:
    event = {"type": "invite", "invite_id": "s", "call_id": "c", "at": 0.0}
    await redis_store.register("s", event, call_id="c", client_context="ctx-s")
    await redis_store._redis.script_flush()  # as a restarted server has none
    appended = await redis_store.append("s", "n1", {"type": "timeout", "at": 1.0})
    assert (True, 2) == (appended.new, appended.count)


async def test_a_change_is_told_to_the_invites_watchers_only_and_not_to_its_maker(
    redis_url: str,
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    event = {"type": "invite", "at": 0.0, "call_id": "call-w"}
    running = Snapshot(version=2, state="running")
    async with (
        RedisStore(redis_url, prefix=prefix) as one,
        RedisStore(redis_url, prefix=prefix) as two,
        one.subscribe() as told_one,
        two.subscribe() as told_two,
    ):
        for name in ("unwatched", "watched"):
            await one.register(
                name, {**event, "invite_id": name}, call_id="call-w", client_context=name
            )
        await two.watch("watched")
        await two.watch("watched")  # twice: still one watcher
        # one makes a change to each: two is told of the watched one only, one of neither.
        for name in ("unwatched", "watched"):
            await one.append(name, "r", {"type": "response", "at": 1.0}, snapshot=running)
        # two makes a change to the watched one: one (its registrar) is told of it.
        done = Snapshot(version=3, state="completed")
        await two.append("watched", "n", {"type": "notification", "at": 2.0}, snapshot=done)
        with anyio.fail_after(5):
            first_two = await anext(aiter(told_two))
            first_one = await anext(aiter(told_one))
        # Pub/sub keeps the order of the publishes: a change told out of turn comes first.
        assert ("watched", running) == (first_two.invite_id, first_two.snapshot)
        assert ("watched", done) == (first_one.invite_id, first_one.snapshot)
        with pytest.raises(UnknownInvite):
            await two.watch("no-such-invite")


def test_a_machine_without_redis_server_is_told_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    server = running_server()
    with pytest.raises(RedisUnavailable, match="apt-get install redis-server"):
        server.__enter__()


# coredis 6.9's RedisCluster leaves two anyio memory streams unclosed per client (its
# ClusterLayout's): RedisStore closes them when left, so collecting here warns of nothing.
async def test_an_invites_whole_life_runs_on_a_real_redis_cluster(cluster_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with RedisStore(cluster_url, prefix=prefix, cluster=True) as store:
        event = {"type": "invite", "invite_id": "c1", "call_id": "call-1", "at": 0.0}
        replaced = call_key("call-0")
        await store.register(
            "c1", event, call_id="call-1", client_context="ctx-c1", route_keys=[replaced]
        )
        await store.add_routes("c1", [operation_key("op-c1")])
        keys = ["clientContext:ctx-c1", call_key("call-1"), replaced, operation_key("op-c1")]
        assert dict.fromkeys(keys, ("c1",)) == await store.route(keys)
        await store.schedule("c1", at=5.0)
        assert ["c1"] == [d.invite_id for d in await store.claim_due(5.0, lease=10)]
        done = Snapshot(version=2, state="failed", data={"reason": "timeout"})
        async with (
            RedisStore(cluster_url, prefix=prefix, cluster=True) as peer,
            peer.subscribe() as changes,
        ):
            await peer.watch("c1")
            appended = await store.append(
                "c1", "timeout:requested", {"type": "timeout"}, snapshot=done
            )
            with anyio.fail_after(5):
                change = await anext(aiter(changes))
        assert (True, True, done) == (appended.new, appended.saved, change.snapshot)
        again = await store.append("c1", "timeout:requested", {"type": "timeout"})
        assert not again.new
        await store.release("c1", ttl=60)
        assert {} == await store.route([call_key("call-1"), replaced])
        assert ["invite", "timeout"] == [e["type"] for e in await store.inputs("c1")]
    gc.collect()  # collect coredis' unclosed streams here, under this test's filter
