"""The fleet's costs: a notification through RedisStore, and invites/s across 3 instances vs 1.

Two rows (JSON, printed by ``main``):

- :func:`row_store_notification`: ``client.receive_notifications(body)`` completing a
  running invite, through ``Client(store=RedisStore(url))`` and through the embedded
  Client (no store), interleaved, best of the repeats; the target is one Redis round
  trip (a PING on the same server) over the embedded path.
- :func:`row_fleet_throughput`: ``n`` invites, each sent and completed (the bot answers
  the test's command once the invite is completed), through 1 bot process and through 3
  (uvicorn + webhook_app + a Client on one RedisStore, ``tests/fleet_support.py``), the
  FakeGraph served over HTTP by this process. Invites/s, 3 against 1.

Run against a server of your own or a throwaway one:

    python benchmarks/fleet_bench.py [--url redis://127.0.0.1:6379/0] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx

import callflow

TESTS = Path(__file__).parents[1] / "tests"
PHONE = "+12345678901"
CALL = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"


def _on_path(directory: Path) -> None:
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))


def _completed(call_id: str, operation_id: str, client_context: str) -> bytes:
    _on_path(Path(__file__).parent)
    from bench import completed_body

    body: bytes = completed_body(call_id, operation_id, client_context)
    return body


async def _notifications(url: str, n: int, repeats: int) -> dict[str, float]:
    """Microseconds per completing notification: redis, memory (no store), ping."""
    count = 0

    def graph(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        sent = json.loads(request.content)
        body = {
            "@odata.type": "#microsoft.graph.inviteParticipantsOperation",
            "id": f"op-{count}",
            "status": "Running",
            "clientContext": sent["clientContext"],
            "resultInfo": None,
            "participants": sent["participants"],
        }
        location = (
            f"https://graph.microsoft.com/v1.0/communications/calls/{CALL}/operations/op-{count}"
        )
        return httpx.Response(200, json=body, headers={"Location": location})

    participant = [{"identity": {"phone": {"id": PHONE}}}]
    best = {"redis": float("inf"), "memory": float("inf"), "ping": float("inf")}
    store = callflow.RedisStore(url, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    async with (
        httpx.AsyncClient(
            transport=httpx.MockTransport(graph), base_url=callflow.GRAPH_BASE_URL
        ) as http,
        callflow.Client(http, token="t0ken", store=store, release_after=3600) as on_redis,
        callflow.Client(http, token="t0ken", release_after=3600) as embedded,
    ):

        async def measured(client: callflow.Client) -> float:
            bodies = []
            for _ in range(n):
                handle = await client.invite(CALL, participant)
                assert handle.operation_id is not None
                bodies.append(_completed(CALL, handle.operation_id, handle.client_context))
            start = time.perf_counter()
            for body in bodies:
                await client.receive_notifications(body)
            return (time.perf_counter() - start) / n

        async def pings() -> float:
            start = time.perf_counter()
            for _ in range(n):
                await store._redis.ping()
            return (time.perf_counter() - start) / n

        await measured(on_redis)  # load the scripts, warm the connections
        for _ in range(repeats):
            best["redis"] = min(best["redis"], await measured(on_redis))
            best["memory"] = min(best["memory"], await measured(embedded))
            best["ping"] = min(best["ping"], await pings())
    return {k: v * 1e6 for k, v in best.items()}


def row_store_notification(
    url: str, n: int, repeats: int, backend: str = "asyncio"
) -> dict[str, Any]:
    """The row: a completing notification through RedisStore against the embedded Client."""
    us = anyio.run(_notifications, url, n, repeats, backend=backend)
    floor = us["memory"] + us["ping"]
    return {
        "row": f"one notification applied through Client(store=RedisStore) ({backend})",
        "callflow_us": us["redis"],
        "baselines": {
            "the embedded Client (no store)": us["memory"],
            "one Redis round trip (PING) + the embedded Client": floor,
        },
        "target": "at most one round trip over in-memory: <= 1.25x (PING + embedded)",
        "met": us["redis"] <= 1.25 * floor,
    }


async def _throughput(url: str, instances: int, n: int, concurrency: int) -> float:
    """Invites/s through ``instances`` bot processes, each invite sent and completed."""
    _on_path(TESTS)
    from callflow.testing import Accepts, FakeGraph
    from fleet_support import fleet, front_app, serving
    from redis_support import free_port

    graph_port = free_port()
    ports = [free_port() for _ in range(instances)]
    fake = FakeGraph(default_answer=Accepts(after=0.0), assert_all_used=False)
    prefix = f"bench-fleet-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as logs:
        async with (
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http,
            anyio.create_task_group() as callbacks,
            fake,
            serving(front_app(fake), graph_port),
        ):
            graph = f"http://127.0.0.1:{graph_port}/v1.0"
            with fleet(url, prefix, graph, Path(logs)) as bots:
                for port in ports:
                    bots.start(port)
                for port in ports:
                    await bots.ready(http, port)
                turn = 0

                async def post(body: dict[str, Any], port: int) -> None:
                    # A roster after the run may find the bots gone; a lost completion
                    # during it fails the invite's own check below.
                    with contextlib.suppress(httpx.TransportError):
                        await http.post(f"http://127.0.0.1:{port}/callback", json=body)

                async def deliver(body: dict[str, Any]) -> None:  # concurrently, as Graph
                    nonlocal turn
                    turn += 1
                    callbacks.start_soon(post, body, ports[turn % len(ports)])

                fake.deliver_to(deliver)
                limiter = anyio.CapacityLimiter(concurrency)

                async def one(i: int) -> None:
                    body = {
                        "call_id": str(uuid.uuid4()),
                        "participants": [{"identity": {"phone": {"id": f"+1555{i:07d}"}}}],
                        "client_context": f"bench-{i}",
                        "wait": True,
                    }
                    async with limiter:
                        answer = await http.post(
                            f"http://127.0.0.1:{ports[i % instances]}/invite", json=body
                        )
                    assert answer.json()["state"] == "completed", answer.text

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)
                rate = n / (time.perf_counter() - start)
    return rate


def row_fleet_throughput(url: str, n: int, concurrency: int = 30) -> dict[str, Any]:
    """The row: invites/s through 3 bot processes against 1, on one Redis."""
    one = anyio.run(_throughput, url, 1, n, concurrency)
    three = anyio.run(_throughput, url, 3, n, concurrency)
    return {
        "row": f"fleet throughput, {n} invites sent and completed (3 instances vs 1)",
        "callflow_per_s": three,
        "baselines": {"1 instance": one},
        "target": ">= 2x one instance (2-core machine; see README 'Running a fleet')",
        "met": three >= 2 * one,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis server (default: start a throwaway one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url = args.url
        if url is None:
            _on_path(TESTS)
            from redis_support import redis_server_url

            url = stack.enter_context(redis_server_url())
        rows = [
            row_store_notification(url, 20 if args.quick else 1000, 1 if args.quick else 5),
            row_store_notification(url, 20 if args.quick else 1000, 1 if args.quick else 5, "trio"),
            row_fleet_throughput(url, 20 if args.quick else 600),
        ]
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
