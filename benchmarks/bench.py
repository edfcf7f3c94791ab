"""callflow side by side with the naive approach and the physical floor, in one run.

Every row measures callflow and its baseline in the same process, interleaved, best of
several repeats, so the ratio holds on a noisy machine. Run:

    python benchmarks/bench.py                  # full size, prints a table, writes JSON
    python benchmarks/bench.py --quick          # tiny sizes (what the test suite runs)

Rows (see README "Benchmarks"):
1. create and register an invite, against a transitions.Machine per invite and a plain
   dict-lookup machine;
2. memory per in-flight invite with 100,000 held (tracemalloc), same baselines;
3. one notification from raw webhook bytes to the invite's state changed, against
   json.loads of the same bytes alone (the floor);
4. one transition, against the dict-lookup machine;
5. client.invite() against a raw httpx POST of the same body through the same
   MockTransport;
6. 10,000 concurrent invites completed by notifications through the Client and the fake
   Graph service, on asyncio and trio.

With ``--fleet`` (a Redis server: ``--redis URL``, else a throwaway one), also the rows of
``fleet_bench.py``:

7. one notification applied through ``Client(store=RedisStore)``, against the embedded
   Client and one Redis round trip over it, on asyncio and trio;
8. fleet throughput: invites/s sent and completed through 3 bot processes against 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from transitions import Machine

import callflow
from callflow import Identity, IdentitySet, InvitationParticipantInfo, Invite, Switchboard
from callflow._core._machine import TRANSITIONS, InviteKind, InviteState, Trigger, states_of

# The spec's example 4 (a PSTN invite): the response and the operation-completed
# notification as Graph sends them (compact JSON).
PHONE = "+12345678901"
OPERATION = {
    "@odata.type": "#microsoft.graph.inviteParticipantsOperation",
    "id": "eec3812a-fdc3-4fb4-825c-a06c9f35414e",
    "status": "Running",
    "clientContext": "f2fa86af-3c51-4bc2-8fc0-475452d9764f",
    "resultInfo": None,
    "participants": [
        {
            "endpointType": None,
            "id": None,
            "replacesCallId": None,
            "identity": {
                "user": None,
                "guest": None,
                "encrypted": None,
                "onPremises": None,
                "applicationInstance": None,
                "application": None,
                "device": None,
                "phone": {"@odata.type": "#microsoft.graph.identity", "id": PHONE},
            },
        }
    ],
}


def completed_body(call_id: str, operation_id: str, client_context: str) -> bytes:
    """Example 4's operation-completed notification for one invite, as raw bytes."""
    body = {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resource": f"/app/calls/{call_id}/operations/{operation_id}",
                "resourceUrl": f"/communications/calls/{call_id}/operations/{operation_id}",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.inviteParticipantsOperation",
                    "participants": [
                        {
                            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                            "identity": {
                                "@odata.type": "#microsoft.graph.identitySet",
                                "phone": {"@odata.type": "#microsoft.graph.identity", "id": PHONE},
                            },
                        }
                    ],
                    "status": "completed",
                    "clientContext": client_context,
                    "id": operation_id,
                },
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


PARTICIPANT = InvitationParticipantInfo(identity=IdentitySet(phone=Identity(id=PHONE)))


# -- the baselines ---------------------------------------------------------------------------

_DICT_TABLE: dict[tuple[str, str], str] = {
    (row_source, row["trigger"]): row["dest"]
    for row in TRANSITIONS[InviteKind.invite]
    for row_source in ([row["source"]] if isinstance(row["source"], str) else row["source"])
}


class DictMachine:
    """The plain dict-lookup machine a careful user would write by hand."""

    __slots__ = ("call_id", "client_context", "history", "participants", "state")

    def __init__(self, call_id: str, participants: list[Any]) -> None:
        self.call_id = call_id
        self.participants = participants
        self.client_context = str(uuid.uuid4())
        self.state = "requested"
        self.history: list[tuple[str, str, str, str, float]] = []

    def fire(self, trigger: str, cause: str, at: float) -> str:
        source = self.state
        dest = _DICT_TABLE.get((source, trigger))
        if dest is None:
            return source
        self.state = dest
        self.history.append((trigger, source, dest, cause, at))
        return dest


class NaiveInvite:
    """The naive way: a transitions.Machine built per invite."""

    def __init__(self, call_id: str, participants: list[Any]) -> None:
        self.call_id = call_id
        self.participants = participants
        self.client_context = str(uuid.uuid4())
        self.machine = Machine(
            model=self,
            states=[s.value for s in states_of(InviteKind.invite)],
            transitions=[dict(t) for t in TRANSITIONS[InviteKind.invite]],
            initial="requested",
            auto_transitions=False,
        )


# -- measuring ---------------------------------------------------------------------------------


def best_per_op(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Seconds per operation: the best of ``repeats`` runs of ``fn(n)``."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def side_by_side(
    ours: Callable[[int], None], theirs: Callable[[int], None], n: int, repeats: int
) -> tuple[float, float]:
    """Both, interleaved repeat by repeat; best of each."""
    a = b = float("inf")
    for _ in range(repeats):
        a = min(a, best_per_op(ours, n, 1))
        b = min(b, best_per_op(theirs, n, 1))
    return a, b


def bytes_per(make: Callable[[int], Any], n: int) -> float:
    """Bytes allocated and kept per item when ``n`` are held."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = make(n)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    return (after - before) / n


# -- the rows ----------------------------------------------------------------------------------


def row_create(n: int, naive_n: int, repeats: int) -> dict[str, Any]:
    def ours(k: int) -> None:
        board = Switchboard()
        for i in range(k):
            board.add(Invite(f"call-{i}", [PARTICIPANT]), at=0.0)

    def dicts(k: int) -> None:
        registry: dict[str, DictMachine] = {}
        for i in range(k):
            m = DictMachine(f"call-{i}", [PARTICIPANT])
            registry[m.client_context] = m

    def naive(k: int) -> None:
        registry: dict[str, NaiveInvite] = {}
        for i in range(k):
            m = NaiveInvite(f"call-{i}", [PARTICIPANT])
            registry[m.client_context] = m

    cf, dm = side_by_side(ours, dicts, n, repeats)
    nv = best_per_op(naive, naive_n, max(1, repeats // 2))
    return {
        "row": "create and register an invite",
        "callflow_us": cf * 1e6,
        "baselines": {"transitions.Machine per invite": nv * 1e6, "dict-lookup machine": dm * 1e6},
        "target": "<= 20 us and >= 15x faster than a Machine per invite",
        "met": cf * 1e6 <= 20 and nv / cf >= 15,
    }


def row_memory(n: int, naive_n: int) -> dict[str, Any]:
    def ours(k: int) -> Switchboard:
        board = Switchboard()
        for i in range(k):
            board.add(Invite(f"call-{i}", [PARTICIPANT]), at=0.0)
        return board

    def dicts(k: int) -> dict[str, DictMachine]:
        registry = {}
        for i in range(k):
            m = DictMachine(f"call-{i}", [PARTICIPANT])
            registry[m.client_context] = m
        return registry

    def naive(k: int) -> dict[str, NaiveInvite]:
        registry = {}
        for i in range(k):
            m = NaiveInvite(f"call-{i}", [PARTICIPANT])
            registry[m.client_context] = m
        return registry

    cf = bytes_per(ours, n)
    return {
        "row": f"memory per in-flight invite ({n:,} held)",
        "callflow_bytes": cf,
        "baselines": {
            f"transitions.Machine per invite ({naive_n:,} held)": bytes_per(naive, naive_n),
            "dict-lookup machine": bytes_per(dicts, n),
        },
        "target": "<= 2 KB",
        "met": cf <= 2048,
    }


def _running_board(n: int) -> tuple[Switchboard, list[bytes]]:
    board = Switchboard()
    bodies = []
    for i in range(n):
        invite = Invite(f"call-{i}", [PARTICIPANT])
        board.add(invite, at=0.0)
        response = dict(OPERATION, id=f"op-{i}", clientContext=invite.client_context)
        invite.receive_response(200, {}, response, at=0.0)
        board.note_response(invite, at=0.0)
        bodies.append(completed_body(invite.call_id, f"op-{i}", invite.client_context))
    return board, bodies


def row_notification(n: int, repeats: int) -> dict[str, Any]:
    best_cf = best_floor = float("inf")
    size = 0
    for _ in range(repeats):
        board, bodies = _running_board(n)
        size = len(bodies[0])
        gc.collect()
        start = time.perf_counter()
        for body in bodies:
            json.loads(body)
        best_floor = min(best_floor, (time.perf_counter() - start) / n)
        gc.collect()
        start = time.perf_counter()
        for body in bodies:
            board.receive(body, at=1.0)
        best_cf = min(best_cf, (time.perf_counter() - start) / n)
        assert all(i.state is InviteState.completed for i in board)
    return {
        "row": f"one notification, raw bytes to state changed ({size} B body)",
        "callflow_us": best_cf * 1e6,
        "baselines": {"json.loads of the same bytes": best_floor * 1e6},
        "target": "<= 4x json.loads",
        "met": best_cf / best_floor <= 4,
    }


def row_transition(n: int, repeats: int) -> dict[str, Any]:
    def ours(k: int) -> None:
        invites = [Invite("call", [PARTICIPANT], client_context=str(i)) for i in range(k)]
        start = time.perf_counter()
        for invite in invites:
            invite._fire(Trigger.accepted, "HTTP 200", 0.0)  # the bare machine step
        timings.append(time.perf_counter() - start)

    def dicts(k: int) -> None:
        machines = [DictMachine("call", [PARTICIPANT]) for _ in range(k)]
        start = time.perf_counter()
        for m in machines:
            m.fire("accepted", "HTTP 200", 0.0)
        timings.append(time.perf_counter() - start)

    best_cf = best_dm = float("inf")
    for _ in range(repeats):
        timings: list[float] = []
        ours(n)
        dicts(n)
        best_cf = min(best_cf, timings[0] / n)
        best_dm = min(best_dm, timings[1] / n)
    return {
        "row": "one transition (requested -> running)",
        "callflow_us": best_cf * 1e6,
        "baselines": {"dict-lookup machine": best_dm * 1e6},
        "target": "<= 10x the dict-lookup machine",
        "met": best_cf / best_dm <= 10,
    }


def row_client_invite(n: int, repeats: int) -> dict[str, Any]:
    location = "https://graph.microsoft.com/v1.0/communications/calls/c/operations/op"
    answer = json.dumps(OPERATION).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=answer,
            headers={"Content-Type": "application/json", "Location": location},
        )

    body = {
        "participants": [PARTICIPANT.to_json()],
        "clientContext": "f2fa86af-3c51-4bc2-8fc0-475452d9764f",
    }
    path = "/communications/calls/ab6233a5-20b7-4c5e-bea2-ce56c9776429/participants/invite"
    results: dict[str, float] = {}

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="https://graph.microsoft.com/v1.0"
            ) as http,
            callflow.Client(http, token="t0ken", release_after=0.0) as client,
        ):
            best_raw = best_cf = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(n):
                    await http.post(path, json=body, headers={"Authorization": "Bearer t0ken"})
                best_raw = min(best_raw, (time.perf_counter() - start) / n)
                start = time.perf_counter()
                for _ in range(n):
                    await client.invite("ab6233a5-20b7-4c5e-bea2-ce56c9776429", [PARTICIPANT])
                best_cf = min(best_cf, (time.perf_counter() - start) / n)
            results["raw"], results["cf"] = best_raw, best_cf

    anyio.run(run)
    return {
        "row": "client.invite() through MockTransport (asyncio)",
        "callflow_us": results["cf"] * 1e6,
        "baselines": {"raw httpx POST of the same body": results["raw"] * 1e6},
        "target": "<= 1.25x the raw POST",
        "met": results["cf"] / results["raw"] <= 1.25,
    }


def row_concurrency(n: int, backend: str) -> dict[str, Any]:
    """N invites in flight at once through the Client and FakeGraph, each completed."""
    from callflow.testing import Accepts, FakeGraph

    results: dict[str, float] = {}

    async def run() -> None:
        async with (
            FakeGraph(default_answer=Accepts(after=0.0), seed=1) as fake,
            fake.http_client() as http,
            callflow.Client(http, token="t0ken", release_after=0.0) as client,
        ):
            fake.deliver_to(client)
            done = 0

            async def one(i: int) -> None:
                nonlocal done
                handle = await client.invite(f"call-{i}", [PARTICIPANT])
                if await handle.wait() is InviteState.completed:
                    done += 1

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
            results["wall"] = time.perf_counter() - start
            results["done"] = done

    anyio.run(run, backend=backend)
    assert results["done"] == n, results
    return {
        "row": f"{n:,} concurrent invites through Client + FakeGraph ({backend})",
        "wall_s": results["wall"],
        "invites_per_s": n / results["wall"],
        "target": "all complete",
        "met": results["done"] == n,
    }


ROWS_HELP = "1 create, 2 memory, 3 notification, 4 transition, 5 client.invite, 6 concurrency"


def fleet_rows(quick: bool, redis_url: str | None) -> list[dict[str, Any]]:
    """Rows 7 and 8 (``fleet_bench.py``), on ``redis_url`` or a throwaway server."""
    from contextlib import ExitStack

    here = Path(__file__).parent
    sys.path[:0] = [str(here), str(here.parent / "tests")]
    from fleet_bench import row_fleet_throughput, row_store_notification

    from redis_support import redis_server_url

    n, repeats = (20, 1) if quick else (1000, 5)
    with ExitStack() as stack:
        url = redis_url or stack.enter_context(redis_server_url())
        rows = [row_store_notification(url, n, repeats, b) for b in ("asyncio", "trio")]
        rows.append(row_fleet_throughput(url, 20 if quick else 600))
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    scale = 0.01 if quick else 1.0
    repeats = 2 if quick else 7
    k = max(50, int(20_000 * scale))
    rows: list[dict[str, Any]] = [
        row_create(k, max(20, int(2_000 * scale)), repeats),
        row_memory(max(100, int(100_000 * scale)), max(20, int(2_000 * scale))),
        row_notification(k, repeats),
        row_transition(max(100, int(100_000 * scale)), repeats),
        row_client_invite(max(20, int(2_000 * scale)), repeats),
    ]
    for backend in ("asyncio", "trio"):
        rows.append(row_concurrency(max(100, int(10_000 * scale)), backend))
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| benchmark | callflow | baseline | callflow ÷ baseline | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "callflow_bytes" in row:
            ours, unit = row["callflow_bytes"], "B"
        elif "callflow_per_s" in row:
            ours, unit = row["callflow_per_s"], "invites/s"
        elif "callflow_us" in row:
            ours, unit = row["callflow_us"], "us"
        else:
            lines.append(
                f"| {row['row']} | {row['wall_s']:.2f} s, {row['invites_per_s']:,.0f} invites/s "
                f"| - | - | {row['target']} | {'yes' if row['met'] else 'NO'} |"
            )
            continue
        met = "yes" if row["met"] else "NO"
        for i, (name, theirs) in enumerate(row["baselines"].items()):
            head = (row["row"], f"{ours:,.2f} {unit}") if i == 0 else ("", "")
            tail = (row["target"], met) if i == 0 else ("", "")
            lines.append(
                f"| {head[0]} | {head[1]} | {theirs:,.2f} {unit} ({name}) "
                f"| {ours / theirs:.2f}x | {tail[0]} | {tail[1]} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where")
    parser.add_argument("--fleet", action="store_true", help="add the Redis and fleet rows")
    parser.add_argument("--redis", metavar="URL", help="the Redis server for --fleet")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    if args.fleet:
        rows += fleet_rows(args.quick, args.redis)
    table = render(rows)
    print(table)
    args.json.write_text(
        json.dumps({"python": sys.version.split()[0], "quick": args.quick, "rows": rows}, indent=2)
        + "\n"
    )
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
