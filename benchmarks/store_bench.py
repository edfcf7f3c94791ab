"""The store's cost: one input appended through RedisStore vs MemoryStore vs a bare round trip.

Each repeat appends ``n`` distinct notifications (one Lua script each, with the snapshot
kept and published, as the engine will) to a registered invite, interleaved with the
same through MemoryStore and with ``n`` PINGs on the same connection (the round-trip
floor); best of the repeats. Run against a server of your own or a throwaway one:

    python benchmarks/store_bench.py [--url redis://127.0.0.1:6379/0] [--backend trio]

:func:`row_store_append` returns the row in ``bench.py``'s shape, for its table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio

from callflow._redis import RedisStore
from callflow._store import MemoryStore, Snapshot, Store


def _invite_event(invite_id: str) -> dict[str, Any]:
    request = {"clientContext": invite_id, "participants": []}
    return {"type": "invite", "invite_id": invite_id, "call_id": "bench", "request": request}


async def _registered(store: Store) -> str:
    invite_id = uuid.uuid4().hex
    event = _invite_event(invite_id)
    await store.register(invite_id, event, call_id="bench-call", client_context=invite_id)
    return invite_id


async def _appends(store: Store, n: int) -> None:
    invite_id = await _registered(store)
    for i in range(n):
        event = {"type": "notification", "invite_id": invite_id, "at": float(i)}
        snapshot = Snapshot(version=i + 2, state="running")
        await store.append(invite_id, f"n{i}", event, snapshot=snapshot)


async def _best(fn: Callable[[int], Awaitable[None]], n: int) -> float:
    start = time.perf_counter()
    await fn(n)
    return (time.perf_counter() - start) / n


async def measure(url: str, n: int, repeats: int) -> dict[str, float]:
    """Microseconds per append (Redis, memory) and per PING, best of ``repeats``."""
    best = {"redis": float("inf"), "memory": float("inf"), "ping": float("inf")}
    async with RedisStore(url, prefix=f"bench-{uuid.uuid4().hex[:8]}") as redis:
        memory = MemoryStore()

        async def redis_appends(k: int) -> None:
            await _appends(redis, k)

        async def memory_appends(k: int) -> None:
            await _appends(memory, k)

        async def pings(k: int) -> None:
            for _ in range(k):
                await redis._redis.ping()

        await redis_appends(10)  # load the script, warm the pool
        for _ in range(repeats):
            best["redis"] = min(best["redis"], await _best(redis_appends, n))
            best["memory"] = min(best["memory"], await _best(memory_appends, n))
            best["ping"] = min(best["ping"], await _best(pings, n))
    return {k: v * 1e6 for k, v in best.items()}


def row_store_append(url: str, n: int, repeats: int, backend: str = "asyncio") -> dict[str, Any]:
    """The row: a RedisStore append against one round trip plus the MemoryStore append."""
    us = anyio.run(measure, url, n, repeats, backend=backend)
    floor = us["ping"] + us["memory"]
    return {
        "row": f"one input appended (dedupe, snapshot, publish) through RedisStore ({backend})",
        "callflow_us": us["redis"],
        "baselines": {
            "MemoryStore append": us["memory"],
            "one Redis round trip (PING) + MemoryStore append": floor,
        },
        "target": "one round trip per input: <= 1.25x (PING + MemoryStore append)",
        "met": us["redis"] <= 1.25 * floor,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis server (default: start a throwaway one)")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url = args.url
        if url is None:
            sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
            from redis_support import redis_server_url

            url = stack.enter_context(redis_server_url())
        row = row_store_append(url, args.n, args.repeats, args.backend)
    print(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
