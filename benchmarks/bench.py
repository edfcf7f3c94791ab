"""callflow side by side with the naive approach and the physical floor, in one run.

Every row measures callflow and its baseline in the same process (or the same kind of
fresh subprocess), interleaved repeat by repeat, and reports the **median** of the
repeats: each figure is the median of its own repeats, and the ratio is the median of
the per-repeat ratios (a pair of measurements shares the machine's noise of the moment,
so their ratio holds on a busy machine). The machine (cores, CPU model, Python) is
printed with the table and written into the JSON. Run:

    python benchmarks/bench.py                   # full size: prints the table, writes JSON
    python benchmarks/bench.py --quick           # tiny sizes (what the test suite runs)
    python benchmarks/bench.py --only roster     # one row (or several: --only a,b)
    python benchmarks/bench.py --profile roster  # that row's callflow side, pyinstrument
    python benchmarks/bench.py --readme README.md  # also rewrite the README's table

Rows (their ids, for ``--only`` and ``--profile``):

* ``create``: create and register an invite, against a transitions.Machine per invite
  and a plain dict-lookup machine;
* ``memory``: bytes per in-flight invite with 100,000 held (tracemalloc);
* ``notification``: one notification from raw webhook bytes to the invite's state
  changed, against json.loads of the same bytes (the floor), measured in two fresh
  subprocesses: pure Python (the speed extra made unimportable) and with the optional
  speed extra (msgspec) when it is installed;
* ``transition``: one transition, against the dict-lookup machine;
* ``roster``: a roster notification on a call with 1,000 invites, against the same
  roster on a call with 1 invite;
* ``expire``: the worst single ``Switchboard.expire()`` while the clock sweeps past the
  deadlines of 100,000 invites that were released, and the memory still held after the
  release (against what the invites held);
* ``client``: ``client.invite()`` against a raw httpx POST of the same body through the
  same MockTransport;
* ``concurrency``: 10,000 concurrent invites completed by notifications through Client +
  FakeGraph, CPU time per invite, against a minimal raw httpx + notification loop doing
  the same work (:class:`RawService` and :class:`RawBot` below), on asyncio and trio;
* ``import``: ``import callflow`` then use of ``Invite``/``Switchboard`` only, in a fresh
  subprocess: which of httpx and anyio got imported, and the time it took;
* ``redis``: one completing notification through ``Client(store=RedisStore)``, against
  one Redis round trip (a PING on the same connection pool) plus the same notification
  through the Client without a store (the in-memory path);
* ``fleet``: invites/s, each sent and completed, through 3 bot processes (uvicorn +
  webhook_app on one RedisStore, ``tests/fleet_support.py``) against 1, with the CPU
  each process used (/proc/<pid>/stat): the FakeGraph and driver (this process), Redis,
  the bots.

The two Redis rows use ``CALLFLOW_TEST_REDIS_URL`` when it is set, else a throwaway
``redis-server`` on a free loopback port (stopped after the row); without one they say
"not measured: redis-server missing".
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
from transitions import Machine

import callflow
from callflow import Identity, IdentitySet, InvitationParticipantInfo, Invite, Switchboard
from callflow._core._machine import TRANSITIONS, InviteKind, InviteState, Trigger, states_of
from callflow.testing import Operation, operation_notification, response_body, roster_notification

SPEED_EXTRA = "msgspec"  # what `pip install 'callflow[speed]'` adds

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
PSTN = {"identity": {"phone": {"id": PHONE}}}
PARTICIPANT = InvitationParticipantInfo(identity=IdentitySet(phone=Identity(id=PHONE)))


def _compact(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def completed_body(call_id: str, operation_id: str, client_context: str) -> bytes:
    """Example 4's operation-completed notification for one invite, as raw bytes."""
    op = Operation(
        id=operation_id, call_id=call_id, client_context=client_context, participants=[PSTN]
    )
    return _compact(operation_notification(op))


def roster_body(call_id: str, entries: int, version: int) -> bytes:
    """A roster update on ``call_id`` with ``entries`` participants; ``version`` makes it new."""
    people = [
        {"identity": {"phone": {"id": f"+1425555{version % 1000:03d}{i:02d}"}}}
        for i in range(entries)
    ]
    op = Operation(id=f"roster-{version}", call_id=call_id, participants=people)
    return _compact(roster_notification(op))


# -- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    else:
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            cpu = found.group(1).strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
    }


def describe_machine(m: Mapping[str, Any]) -> str:
    return f"{m['cores']} cores, {m['cpu']}, {m['python']}, {m['platform']}"


# -- the baselines -------------------------------------------------------------------------------

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


class RawService(httpx.AsyncBaseTransport):
    """The floor of the fake service: take the POST, answer it, queue its notifications.

    It does what FakeGraph does for an invite that is accepted at once, with nothing
    else: reads the JSON body, answers 200 with the operation (the same wire builders),
    and queues the operation's completion and the roster, which :meth:`run` sends to the
    bot one at a time, in order.
    """

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()
        self.wake: anyio.Event | None = None
        self.ids = itertools.count()
        self.target: RawBot | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread())
        call_id = request.url.path.split("/")[-3]
        op = Operation(
            id=f"op-{next(self.ids)}",
            call_id=call_id,
            client_context=body["clientContext"],
            participants=body["participants"],
        )
        self.queue.append(operation_notification(op))
        self.queue.append(roster_notification(op))
        if self.wake is not None:
            self.wake.set()
        location = (
            f"https://graph.microsoft.com/v1.0/communications/calls/{call_id}/operations/{op.id}"
        )
        return httpx.Response(200, headers={"Location": location}, json=response_body(op))

    async def run(self) -> None:
        bot = self.target
        assert bot is not None
        while True:
            if not self.queue:
                self.wake = anyio.Event()
                await self.wake.wait()
                self.wake = None
                continue
            await bot.receive(self.queue.popleft())


class RawBot:
    """The floor of the bot: POST with httpx, wait for the notification that ends it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.waiting: dict[str, anyio.Event] = {}
        self.status: dict[str, str] = {}
        self.rosters = 0

    async def invite(self, call_id: str) -> str:
        context = str(uuid.uuid4())
        done = self.waiting[context] = anyio.Event()
        response = await self.http.post(
            f"https://graph.microsoft.com/v1.0/communications/calls/{call_id}/participants/invite",
            content=json.dumps({"participants": [PSTN], "clientContext": context}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer t0ken"},
        )
        assert response.status_code == 200
        assert response.json()["status"] == "Running"
        await done.wait()
        return self.status.pop(context)

    async def receive(self, body: Mapping[str, Any]) -> None:
        for n in body["value"]:
            data = n["resourceData"]
            if isinstance(data, list):
                self.rosters += 1
                continue
            context = data["clientContext"]
            self.status[context] = data["status"]
            self.waiting.pop(context).set()
        await anyio.lowlevel.checkpoint()


# -- measuring -----------------------------------------------------------------------------------


def per_op(fn: Callable[[int], object], n: int) -> float:
    """Seconds per operation of one run of ``fn(n)``, after a collection."""
    gc.collect()
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n


def interleaved(
    ours: Callable[[], float], theirs: Callable[[], float], repeats: int
) -> tuple[float, float, float]:
    """Both, alternating repeat by repeat: (median ours, median theirs, median ratio)."""
    a: list[float] = []
    b: list[float] = []
    for i in range(repeats):
        # Alternate which side goes first, so neither always runs on a warmer machine.
        if i % 2:
            b.append(theirs())
            a.append(ours())
        else:
            a.append(ours())
            b.append(theirs())
    return (
        statistics.median(a),
        statistics.median(b),
        statistics.median(x / y for x, y in zip(a, b, strict=True)),
    )


def row(
    id_: str,
    name: str,
    *,
    value: float,
    unit: str,
    baselines: Mapping[str, float],
    ratio: float | None,
    target: str,
    met: bool,
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": id_,
        "row": name,
        "callflow": value,
        "unit": unit,
        "baselines": dict(baselines),
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
        **extra,
    }


def _shortfall(ratio: float, limit: float) -> str:
    return f"{ratio / limit:.2f}x over the target ({ratio:.2f}x against <= {limit:g}x)"


# -- the rows ------------------------------------------------------------------------------------


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

    cf, nv, ratio = interleaved(lambda: per_op(ours, n), lambda: per_op(naive, naive_n), repeats)
    dm = statistics.median(per_op(dicts, n) for _ in range(repeats))
    speedup = 1 / ratio
    return row(
        "create",
        "create and register an invite",
        value=cf * 1e6,
        unit="us",
        baselines={"transitions.Machine per invite": nv * 1e6, "dict-lookup machine": dm * 1e6},
        ratio=ratio,
        target=">= 25x faster than a Machine per invite (<= 0.04x)",
        met=speedup >= 25,
        note="" if speedup >= 25 else f"{speedup:.1f}x faster, short of 25x",
    )


def _held_bytes(make: Callable[[int], object], n: int) -> float:
    """Bytes allocated and kept per item while ``n`` are held."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = make(n)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    return (after - before) / n


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

    cf = _held_bytes(ours, n)
    return row(
        "memory",
        f"memory per in-flight invite ({n:,} held)",
        value=cf,
        unit="B",
        baselines={
            f"transitions.Machine per invite ({naive_n:,} held)": _held_bytes(naive, naive_n),
            "dict-lookup machine": _held_bytes(dicts, n),
        },
        ratio=None,
        target="<= 2 KB",
        met=cf <= 2048,
    )


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


def measure_notification(n: int, repeats: int) -> dict[str, Any]:
    """The ``notification`` row's figures, in this process (see :func:`row_notification`)."""
    size = 0

    def ours() -> float:
        nonlocal size
        board, bodies = _running_board(n)
        size = len(bodies[0])
        gc.collect()
        start = time.perf_counter()
        for body in bodies:
            board.receive(body, at=1.0)
        took = (time.perf_counter() - start) / n
        assert all(i.state is InviteState.completed for i in board)
        return took

    floor_bodies = [completed_body(f"call-{i}", f"op-{i}", str(uuid.uuid4())) for i in range(n)]

    def floor() -> float:
        gc.collect()
        start = time.perf_counter()
        for body in floor_bodies:
            json.loads(body)
        return (time.perf_counter() - start) / n

    cf, jl, ratio = interleaved(ours, floor, repeats)
    return {
        "callflow_us": cf * 1e6,
        "json_loads_us": jl * 1e6,
        "ratio": ratio,
        "size": size,
        "extra_loaded": sys.modules.get(SPEED_EXTRA) is not None,
    }


# A child run: the modules named are made unimportable before anything imports callflow,
# exactly as if they were not installed; then this script runs as ``__main__``.
_CHILD = """
import runpy, sys
for name in sys.argv[2].split(","):
    if name:
        sys.modules[name] = None
script = sys.argv[1]
sys.argv = [script, *sys.argv[3:]]
runpy.run_path(script, run_name="__main__")
"""


def _child(args: list[str], block: Iterable[str] = ()) -> dict[str, Any]:
    """Run this script in a fresh interpreter; its last stdout line is JSON."""
    script = str(Path(__file__).resolve())
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, script, ",".join(block), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _extra_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec(SPEED_EXTRA) is not None


def row_notification(n: int, repeats: int) -> list[dict[str, Any]]:
    """Bytes to state, in fresh subprocesses: without the speed extra, and with it."""
    args = ["--measure", "notification", "--n", str(n), "--repeats", str(repeats)]
    rows = []
    pure = _child(args, block=[SPEED_EXTRA])
    rows.append(
        row(
            "notification",
            f"one notification, raw bytes to state changed ({pure['size']} B), pure Python",
            value=pure["callflow_us"],
            unit="us",
            baselines={"json.loads of the same bytes": pure["json_loads_us"]},
            ratio=pure["ratio"],
            target="<= 2.5x json.loads",
            met=pure["ratio"] <= 2.5,
            note="" if pure["ratio"] <= 2.5 else _shortfall(pure["ratio"], 2.5),
        )
    )
    if not _extra_installed():
        rows.append(
            row(
                "notification_extra",
                f"one notification, raw bytes to state changed, with [speed] ({SPEED_EXTRA})",
                value=float("nan"),
                unit="us",
                baselines={},
                ratio=None,
                target="<= 1.5x json.loads",
                met=False,
                note=f"not measured: {SPEED_EXTRA} is not installed ('callflow[speed]')",
            )
        )
        return rows
    fast = _child(args)
    note = (
        "" if fast["extra_loaded"] else f"{SPEED_EXTRA} is installed but callflow did not load it"
    )
    if fast["ratio"] > 1.5:
        note = "; ".join(filter(None, [note, _shortfall(fast["ratio"], 1.5)]))
    rows.append(
        row(
            "notification_extra",
            f"one notification, raw bytes to state changed ({fast['size']} B), "
            f"with [speed] ({SPEED_EXTRA})",
            value=fast["callflow_us"],
            unit="us",
            baselines={"json.loads of the same bytes": fast["json_loads_us"]},
            ratio=fast["ratio"],
            target="<= 1.5x json.loads",
            met=fast["extra_loaded"] and fast["ratio"] <= 1.5,
            note=note,
        )
    )
    return rows


def row_transition(n: int, repeats: int) -> dict[str, Any]:
    def ours() -> float:
        invites = [Invite("call", [PARTICIPANT], client_context=str(i)) for i in range(n)]
        gc.collect()
        start = time.perf_counter()
        for invite in invites:
            invite._fire(Trigger.accepted, "HTTP 200", 0.0)  # the bare machine step
        return (time.perf_counter() - start) / n

    def dicts() -> float:
        machines = [DictMachine("call", [PARTICIPANT]) for _ in range(n)]
        gc.collect()
        start = time.perf_counter()
        for m in machines:
            m.fire("accepted", "HTTP 200", 0.0)
        return (time.perf_counter() - start) / n

    cf, dm, ratio = interleaved(ours, dicts, repeats)
    return row(
        "transition",
        "one transition (requested -> running)",
        value=cf * 1e6,
        unit="us",
        baselines={"dict-lookup machine": dm * 1e6},
        ratio=ratio,
        target="<= 10x the dict-lookup machine",
        met=ratio <= 10,
    )


def row_roster(busy: int, entries: int, rosters: int, repeats: int) -> dict[str, Any]:
    """The same kind of roster on a call with ``busy`` invites and on a call with one."""
    versions = itertools.count()

    def board_on(call_id: str, invites: int) -> Switchboard:
        board = Switchboard()
        for i in range(invites):
            invite = Invite(call_id, [PARTICIPANT], client_context=f"{call_id}-{i}")
            board.add(invite, at=0.0)
            response = dict(OPERATION, id=f"{call_id}-op-{i}", clientContext=invite.client_context)
            invite.receive_response(200, {}, response, at=0.0)
            board.note_response(invite, at=0.0)
        return board

    def measure(call_id: str, invites: int) -> float:
        board = board_on(call_id, invites)
        bodies = [roster_body(call_id, entries, next(versions)) for _ in range(rosters)]
        gc.collect()
        start = time.perf_counter()
        for body in bodies:
            receipt = board.receive(body, at=1.0)
        took = (time.perf_counter() - start) / rosters
        assert len(receipt.deliveries) == invites
        assert all(i.roster is not None for i in board)
        return took

    many, one, ratio = interleaved(
        lambda: measure("busy-call", busy), lambda: measure("quiet-call", 1), repeats
    )
    return row(
        "roster",
        f"a {entries}-entry roster notification on a call with {busy:,} invites",
        value=many * 1e6,
        unit="us",
        baselines={"the same roster on a call with 1 invite": one * 1e6},
        ratio=ratio,
        target="<= 3x the call with 1 invite",
        met=ratio <= 3,
        note="" if ratio <= 3 else _shortfall(ratio, 3),
    )


def row_expire(n: int, small: int, repeats: int) -> dict[str, Any]:
    """Release ``n`` invites before their deadlines, then sweep the clock past them.

    The baseline is the same sweep after releasing ``small`` invites: the ratio says
    whether the stall grows with the number released (the target itself is absolute).
    """

    def filled(k: int) -> Switchboard:
        board = Switchboard()
        for i in range(k):
            board.add(Invite(f"call-{i % 1000}", [PARTICIPANT], client_context=f"cc-{i}"), at=0.0)
        return board

    def release_all(board: Switchboard) -> None:
        for invite in list(board):
            board.release(invite)

    def worst_expire(k: int) -> Callable[[], float]:
        def measure() -> float:
            board = filled(k)
            release_all(board)
            gc.collect()
            worst = 0.0
            for t in range(0, 241, 5):  # every deadline (90 s by default) lies in the sweep
                start = time.perf_counter()
                board.expire(at=float(t))
                worst = max(worst, time.perf_counter() - start)
            return worst

        return measure

    worst, floor, ratio = interleaved(worst_expire(n), worst_expire(small), repeats)
    # Memory: what n invites hold while in the switchboard, and what is left of it once
    # they are released (before their old deadlines pass; nothing else refers to them).
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    board = filled(n)
    held = tracemalloc.get_traced_memory()[0] - base
    release_all(board)
    gc.collect()
    left = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del board
    kept = left / held
    met = worst <= 0.005 and kept <= 0.10
    notes = [f"after release {kept:.1%} of the {held / 1e6:,.1f} MB they held is still held"]
    if worst > 0.005:
        notes.append(f"worst expire() {worst * 1e3:.1f} ms, {worst / 0.005:.1f}x the 5 ms budget")
    return row(
        "expire",
        f"worst single expire() after releasing {n:,} invites",
        value=worst * 1e3,
        unit="ms",
        baselines={f"the same after releasing {small:,}": floor * 1e3},
        ratio=ratio,
        target="<= 5 ms; memory back within 10% after release",
        met=met,
        note="; ".join(notes),
        memory={"held_bytes": held, "left_after_release_bytes": left, "kept": kept},
    )


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
    call_id = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
    path = f"/communications/calls/{call_id}/participants/invite"
    results: dict[str, tuple[float, float, float]] = {}

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="https://graph.microsoft.com/v1.0"
            ) as http,
            callflow.Client(http, token="t0ken", release_after=0.0) as client,
        ):
            raw: list[float] = []
            ours: list[float] = []
            for i in range(repeats):
                for side in (0, 1) if i % 2 == 0 else (1, 0):
                    gc.collect()
                    start = time.perf_counter()
                    if side == 0:
                        for _ in range(n):
                            await client.invite(call_id, [PARTICIPANT])
                        ours.append((time.perf_counter() - start) / n)
                    else:
                        for _ in range(n):
                            await http.post(
                                path, json=body, headers={"Authorization": "Bearer t0ken"}
                            )
                        raw.append((time.perf_counter() - start) / n)
            ratios = [a / b for a, b in zip(ours, raw, strict=True)]
            results["r"] = (
                statistics.median(ours),
                statistics.median(raw),
                statistics.median(ratios),
            )

    anyio.run(run)
    cf, raw, ratio = results["r"]
    return row(
        "client",
        "client.invite() through MockTransport (asyncio)",
        value=cf * 1e6,
        unit="us",
        baselines={"raw httpx POST of the same body": raw * 1e6},
        ratio=ratio,
        target="<= 1.15x the raw POST",
        met=ratio <= 1.15,
        note="" if ratio <= 1.15 else _shortfall(ratio, 1.15),
    )


async def callflow_invites(n: int) -> int:
    """``n`` concurrent invites through Client + FakeGraph; how many completed."""
    from callflow.testing import Accepts, FakeGraph

    done = 0
    async with (
        FakeGraph(default_answer=Accepts(after=0.0), seed=1) as fake,
        fake.http_client() as http,
        callflow.Client(http, token="t0ken", release_after=0.0) as client,
    ):
        fake.deliver_to(client)

        async def one(i: int) -> None:
            nonlocal done
            handle = await client.invite(f"call-{i}", [PSTN])
            if await handle.wait() is InviteState.completed:
                done += 1

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return done


async def raw_invites(n: int) -> int:
    """The same ``n`` invites through :class:`RawService` and :class:`RawBot`."""
    service = RawService()
    done = 0
    async with httpx.AsyncClient(transport=service) as http:
        bot = service.target = RawBot(http)

        async def one(i: int) -> None:
            nonlocal done
            if await bot.invite(f"call-{i}") == "completed":
                done += 1

        async with anyio.create_task_group() as outer:
            outer.start_soon(service.run)
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
            outer.cancel_scope.cancel()
    assert bot.rosters == n
    return done


def row_concurrency(n: int, backend: str, repeats: int) -> dict[str, Any]:
    """CPU time per invite, ``n`` in flight at once (process time: the machine is shared)."""

    def cpu(fn: Callable[[int], Any]) -> Callable[[], float]:
        def measure() -> float:
            gc.collect()
            start = time.process_time()
            done = anyio.run(fn, n, backend=backend)
            took = time.process_time() - start
            assert done == n, (fn.__name__, done)
            return took / n

        return measure

    cf, raw, ratio = interleaved(cpu(callflow_invites), cpu(raw_invites), repeats)
    return row(
        f"concurrency_{backend}",
        f"{n:,} concurrent invites, Client + FakeGraph, CPU per invite ({backend})",
        value=cf * 1e6,
        unit="us",
        baselines={"minimal raw httpx + notification loop": raw * 1e6},
        ratio=ratio,
        target="<= 1.6x the raw loop",
        met=ratio <= 1.6,
        note="" if ratio <= 1.6 else _shortfall(ratio, 1.6),
    )


_IMPORT_PROBE = """
import json, sys, time
start = time.perf_counter()
{imports}
took = time.perf_counter() - start
print(json.dumps({{"s": took, "httpx": "httpx" in sys.modules, "anyio": "anyio" in sys.modules}}))
"""
_USE_CORE = """
import callflow
board = callflow.Switchboard()
invite = callflow.Invite("call", [{"identity": {"phone": {"id": "+12345678901"}}}])
board.add(invite, at=0.0)
invite.receive_response(202, {}, {"id": "op", "status": "running"}, at=0.0)
"""


def row_import(repeats: int) -> dict[str, Any]:
    """``import callflow`` and the core's use, in fresh interpreters."""

    def probe(imports: str) -> dict[str, Any]:
        code = _IMPORT_PROBE.format(imports=imports)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    seen: list[dict[str, Any]] = []

    def ours() -> float:
        found = probe(_USE_CORE)
        seen.append(found)
        return float(found["s"])

    def deps() -> float:
        return float(probe("import attrs, transitions")["s"])

    cf, dp, ratio = interleaved(ours, deps, repeats)
    loaded = sorted({m for found in seen for m in ("httpx", "anyio") if found[m]})
    return row(
        "import",
        "import callflow, then Invite/Switchboard only (fresh interpreter)",
        value=cf * 1e3,
        unit="ms",
        baselines={"import attrs, transitions (the core's dependencies)": dp * 1e3},
        ratio=ratio,
        target="neither httpx nor anyio imported; time stated",
        met=not loaded,
        note=f"imported {' and '.join(loaded)}" if loaded else "neither httpx nor anyio imported",
    )


# -- the fleet rows (Redis) ----------------------------------------------------------------------

TESTS = Path(__file__).resolve().parents[1] / "tests"
FLEET_CALL = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"


def _tests_on_path() -> None:
    """The fleet rows reuse the tests' redis-server and bot process (tests/*_support.py)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def with_redis(
    id_: str, name: str, target: str, measure: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """``measure(url)`` on the run's Redis: ``CALLFLOW_TEST_REDIS_URL``, or a throwaway
    redis-server of our own (stopped after the row); without one, the row says so."""
    _tests_on_path()
    from redis_support import RedisUnavailable, redis_server_url

    try:
        with redis_server_url() as url:
            return measure(url)
    except RedisUnavailable:
        return row(
            id_,
            name,
            value=float("nan"),
            unit="",
            baselines={},
            ratio=None,
            target=target,
            met=False,
            note="not measured: redis-server missing",
        )


def _answering_graph() -> httpx.MockTransport:
    """A MockTransport answering each invite POST 200 with a running operation of its own."""
    count = itertools.count(1)

    def graph(request: httpx.Request) -> httpx.Response:
        op = f"op-{next(count)}"
        sent = json.loads(request.content)
        body = {**OPERATION, "id": op, "clientContext": sent["clientContext"]}
        location = f"{callflow.GRAPH_BASE_URL}/communications/calls/{FLEET_CALL}/operations/{op}"
        return httpx.Response(200, json=body, headers={"Location": location})

    return httpx.MockTransport(graph)


async def measure_redis(url: str, n: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per completing notification, per repeat, interleaved: through
    ``Client(store=RedisStore)``, through the embedded Client, and per PING."""
    store = callflow.RedisStore(url, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    times: dict[str, list[float]] = {"redis": [], "memory": [], "ping": []}
    async with (
        httpx.AsyncClient(transport=_answering_graph(), base_url=callflow.GRAPH_BASE_URL) as http,
        callflow.Client(http, token="t0ken", store=store, release_after=3600) as on_redis,
        callflow.Client(http, token="t0ken", release_after=3600) as embedded,
    ):

        async def notifications(client: callflow.Client) -> float:
            bodies = []
            for _ in range(n):
                handle = await client.invite(FLEET_CALL, [PSTN])
                assert handle.operation_id is not None
                bodies.append(
                    completed_body(FLEET_CALL, handle.operation_id, handle.client_context)
                )
            gc.collect()
            start = time.perf_counter()
            for body in bodies:
                await client.receive_notifications(body)
            return (time.perf_counter() - start) / n

        async def pings() -> float:
            start = time.perf_counter()
            for _ in range(n):
                await store._ping()
            return (time.perf_counter() - start) / n

        await notifications(on_redis)  # load the scripts, warm the connections
        for i in range(repeats):
            order = ("redis", "memory", "ping") if i % 2 == 0 else ("ping", "memory", "redis")
            for side in order:
                if side == "ping":
                    times[side].append(await pings())
                else:
                    times[side].append(
                        await notifications(on_redis if side == "redis" else embedded)
                    )
    return times


def row_redis(n: int, repeats: int) -> dict[str, Any]:
    """A notification through RedisStore against one PING plus the embedded path."""
    name = "one notification applied through Client(store=RedisStore) (asyncio)"
    target = "<= 1x (one Redis round trip (PING) + the in-memory path)"

    def measure(url: str) -> dict[str, Any]:
        t = anyio.run(measure_redis, url, n, repeats)
        ratios = [r / (m + p) for r, m, p in zip(t["redis"], t["memory"], t["ping"], strict=True)]
        ratio = statistics.median(ratios)
        memory, ping = statistics.median(t["memory"]), statistics.median(t["ping"])
        redis = statistics.median(t["redis"])
        note = f"{redis / memory:.1f}x the in-memory path"
        if ratio > 1:
            note += f"; {_shortfall(ratio, 1)}"
        return row(
            "redis",
            name,
            value=redis * 1e6,
            unit="us",
            baselines={
                "one Redis round trip (PING) + the in-memory path": (memory + ping) * 1e6,
                "the in-memory path (Client without a store)": memory * 1e6,
            },
            ratio=ratio,
            target=target,
            met=ratio <= 1,
            note=note,
        )

    return with_redis("redis", name, target, measure)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _redis_server_pid(url: str) -> int:
    """The redis-server's pid, as it says (INFO server)."""
    async with callflow.RedisStore(url) as store:
        info = await store._redis.info("server")
    return int(str(info.get("process_id", 0)))


def _local_redis_pid(url: str) -> int | None:
    """The redis-server's pid when it runs on this machine, else None."""
    pid = anyio.run(_redis_server_pid, url)
    return pid if pid and Path(f"/proc/{pid}/stat").exists() else None


async def fleet_throughput(
    url: str, redis_pid: int | None, instances: int, n: int, concurrency: int
) -> dict[str, Any]:
    """``n`` invites, each sent and completed, through ``instances`` bot processes.

    The bots (``tests/fleet_support.py``: uvicorn + webhook_app + a Client on one
    RedisStore) reach a FakeGraph this process serves over HTTP; it delivers each
    notification to the next instance in turn. Returns invites/s, and the CPU seconds
    each process used during the run (this process: the FakeGraph and the driver).
    """
    _tests_on_path()
    from callflow.testing import Accepts, FakeGraph
    from fleet_support import fleet, front_app, serving
    from redis_support import free_port

    graph_port = free_port()
    ports = [free_port() for _ in range(instances)]
    fake = FakeGraph(default_answer=Accepts(after=0.0), assert_all_used=False)
    with tempfile.TemporaryDirectory() as logs:
        async with (
            httpx.AsyncClient(timeout=60) as http,
            contextlib.AsyncExitStack() as stack,
            anyio.create_task_group() as callbacks,
            fake,
            serving(front_app(fake), graph_port),
        ):
            graph = f"http://127.0.0.1:{graph_port}/v1.0"
            prefix = f"bench-fleet-{uuid.uuid4().hex[:8]}"
            with fleet(url, prefix, graph, Path(logs)) as bots:
                for port in ports:
                    bots.start(port)
                for port in ports:
                    await bots.ready(http, port)
                turn = itertools.count()

                # Two connection pools per bot, one for the invites (each holds its connection
                # until the invite ends) and one for the callbacks: httpcore scans a pool's
                # every connection for each request, so one shared pool of hundreds made the
                # driver its own bottleneck.
                async def pool(port: int) -> httpx.AsyncClient:
                    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
                    return await stack.enter_async_context(client)

                invites = {port: await pool(port) for port in ports}
                pools = {port: await pool(port) for port in ports}

                async def post(body: dict[str, Any], port: int) -> None:
                    # A roster after the run may find the bots gone; a lost completion
                    # during it fails the invite's own check below.
                    with contextlib.suppress(httpx.TransportError):
                        await pools[port].post("/callback", json=body)

                async def deliver(body: dict[str, Any]) -> None:  # concurrently, as Graph
                    callbacks.start_soon(post, body, ports[next(turn) % len(ports)])

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
                        answer = await invites[ports[i % instances]].post("/invite", json=body)
                    assert answer.json()["state"] == "completed", answer.text

                pids = {f"bot {k + 1}": bots.processes[p].pid for k, p in enumerate(ports)}
                if redis_pid is not None:
                    pids["redis-server"] = redis_pid
                before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
                own = time.process_time()
                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)
                wall = time.perf_counter() - start
                cpu = {"FakeGraph + driver": time.process_time() - own}
                cpu.update({name: _cpu_seconds(pid) - before[name] for name, pid in pids.items()})
    return {"rate": n / wall, "wall": wall, "cpu": cpu}


def _cpu_share(run: Mapping[str, Any]) -> str:
    """Each process's CPU during a run as a percentage of one core, and their total."""
    wall = run["wall"]
    cpu: Mapping[str, float] = run["cpu"]
    bots = sum(v for k, v in cpu.items() if k.startswith("bot"))
    parts = [f"FakeGraph+driver {cpu['FakeGraph + driver'] / wall:.0%}"]
    if "redis-server" in cpu:
        parts.append(f"Redis {cpu['redis-server'] / wall:.0%}")
    parts.append(f"bots {bots / wall:.0%}")
    return f"{', '.join(parts)}; total {sum(cpu.values()) / wall:.0%}"


def row_fleet(n: int, repeats: int, concurrency: int = 30) -> dict[str, Any]:
    """Invites/s through 3 bot processes against 1, interleaved; the CPU of each process."""
    name = f"fleet throughput, {n:,} invites sent and completed (3 instances vs 1)"
    target = f">= 2x one instance ({os.cpu_count()} cores), or explained from the CPU used"

    def measure(url: str) -> dict[str, Any]:
        redis_pid = _local_redis_pid(url)
        runs: dict[int, list[dict[str, Any]]] = {1: [], 3: []}
        for i in range(repeats):
            for instances in (1, 3) if i % 2 == 0 else (3, 1):
                measured = anyio.run(fleet_throughput, url, redis_pid, instances, n, concurrency)
                runs[instances].append(measured)
        ratios = [t["rate"] / o["rate"] for t, o in zip(runs[3], runs[1], strict=True)]
        ratio = statistics.median(ratios)
        three = statistics.median(r["rate"] for r in runs[3])
        one = statistics.median(r["rate"] for r in runs[1])
        # The CPU of the run whose ratio is the median one (a run, not a mix of runs).
        middle = sorted(range(repeats), key=lambda k: ratios[k])[repeats // 2]
        note = (
            f"CPU per process, % of one core: 1 instance: {_cpu_share(runs[1][middle])}; "
            f"3 instances: {_cpu_share(runs[3][middle])}"
        )
        if ratio < 2:
            cores = os.cpu_count() or 1

            def bots_ms(run: Mapping[str, Any]) -> float:
                cpu: Mapping[str, float] = run["cpu"]
                return 1e3 * sum(v for k, v in cpu.items() if k.startswith("bot")) / n

            busy = sum(runs[1][middle]["cpu"].values()) / runs[1][middle]["wall"]
            note += (
                f" ({cores} cores: at most {cores}00% in all). The bots' CPU per invite: "
                f"{bots_ms(runs[1][middle]):.1f} ms with 1 instance, "
                f"{bots_ms(runs[3][middle]):.1f} ms with 3 (a callback reaching another "
                "instance than the sender's is told to it through Redis)"
            )
            if busy >= 0.8 * cores:
                note += (
                    f"; one instance and the FakeGraph already keep the machine "
                    f"{busy / cores:.0%} busy, so more instances on it add work, not cores"
                )
        return row(
            "fleet",
            name,
            value=three,
            unit="invites/s",
            baselines={"1 instance": one},
            ratio=ratio,
            target=target,
            met=ratio >= 2,
            note=note,
            cpu={"1": runs[1][middle], "3": runs[3][middle]},
        )

    return with_redis("fleet", name, target, measure)


# -- the run -------------------------------------------------------------------------------------

ROWS = (
    "create",
    "memory",
    "notification",
    "transition",
    "roster",
    "expire",
    "client",
    "concurrency",
    "import",
    "redis",
    "fleet",
)


def run(quick: bool, only: Iterable[str] = ROWS) -> list[dict[str, Any]]:
    """Every row asked for, at full or tiny size."""
    repeats = 5 if quick else 7
    wanted = set(only)
    rows: list[dict[str, Any]] = []
    if "create" in wanted:
        rows.append(row_create(50 if quick else 20_000, 10 if quick else 1_000, repeats))
    if "memory" in wanted:
        rows.append(row_memory(100 if quick else 100_000, 20 if quick else 2_000))
    if "notification" in wanted:
        rows.extend(row_notification(50 if quick else 20_000, repeats))
    if "transition" in wanted:
        rows.append(row_transition(100 if quick else 100_000, repeats))
    if "roster" in wanted:
        rows.append(row_roster(20 if quick else 1_000, 20, 2 if quick else 5, repeats))
    if "expire" in wanted:
        rows.append(row_expire(1_000 if quick else 100_000, 100 if quick else 1_000, 5))
    if "client" in wanted:
        rows.append(row_client_invite(20 if quick else 2_000, repeats))
    if "concurrency" in wanted:
        for backend in ("asyncio", "trio"):
            rows.append(row_concurrency(50 if quick else 10_000, backend, 5))
    if "import" in wanted:
        rows.append(row_import(5 if quick else 7))
    if "redis" in wanted:
        rows.append(row_redis(10 if quick else 1_000, 3 if quick else 5))
    if "fleet" in wanted:
        rows.append(row_fleet(10 if quick else 300, 1 if quick else 3))
    return rows


def _figure(value: float, unit: str) -> str:
    if value != value:  # NaN: not measured
        return "-"
    return f"{value:,.2f} {unit}"


def render(rows: list[dict[str, Any]], about: Mapping[str, Any]) -> str:
    """The rows as a Markdown table, the machine stated above it."""
    lines = [
        f"Machine: {describe_machine(about['machine'])}. "
        f"Each figure is the median of {about['repeats']} interleaved repeats"
        + (" (quick run: tiny sizes)." if about["quick"] else "."),
        "",
        "| benchmark | callflow | baseline | callflow ÷ baseline | target | met | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = r["unit"]
        met = "yes" if r["met"] else "**no**"
        baselines = list(r["baselines"].items()) or [("-", float("nan"))]
        for i, (name, theirs) in enumerate(baselines):
            first = i == 0
            if first and r["ratio"] is not None:
                ratio = f"{r['ratio']:.2f}x"
            elif theirs == theirs and r["callflow"] == r["callflow"] and theirs > 0:
                ratio = f"{r['callflow'] / theirs:.2f}x"
            else:
                ratio = "-"
            base = "-" if name == "-" else f"{_figure(theirs, unit)} ({name})"
            cells = [
                r["row"] if first else "",
                _figure(r["callflow"], unit) if first else "",
                base,
                ratio,
                r["target"] if first else "",
                met if first else "",
                r["note"] if first else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def update_readme(path: Path, table: str) -> None:
    """Replace the README's table between the bench markers with ``table``."""
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {README_START} ... {README_END} markers")
    path.write_text(text[: start + len(README_START)] + "\n" + table + "\n" + text[end:])


def profile(row_id: str, quick: bool) -> str:
    """One row under pyinstrument (the ``bench`` dependency group); its text report.

    ``notification`` (its receive loop, with the speed extra when it is installed) and
    ``concurrency`` profile callflow's side alone; the other rows
    profile the whole row, baselines included (each is its own branch of the tree).
    """
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    if row_id == "notification":  # the receive loop alone: the boards are made unprofiled
        boards = [_running_board(50 if quick else 20_000) for _ in range(1 if quick else 5)]
        profiler.start()
        for board, bodies in boards:
            for body in bodies:
                board.receive(body, at=1.0)
        profiler.stop()
        return str(profiler.output_text(unicode=False, color=False, show_all=False))
    profiler.start()
    if row_id == "concurrency":  # the callflow side only, on asyncio
        anyio.run(callflow_invites, 50 if quick else 3_000)
    else:
        run(quick, [row_id])
    profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where")
    parser.add_argument("--only", default="", help=f"comma-separated rows of {', '.join(ROWS)}")
    parser.add_argument("--profile", metavar="ROW", help="profile one row (pyinstrument)")
    parser.add_argument("--readme", type=Path, help="rewrite this README's benchmark table")
    # A child run of the notification row (see row_notification).
    parser.add_argument("--measure", choices=["notification"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_notification(args.n, args.repeats)))
        return 0
    if args.profile:
        print(profile(args.profile, args.quick))
        return 0
    only = [name for name in args.only.split(",") if name] or list(ROWS)
    unknown = sorted(set(only) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    rows = run(args.quick, only)
    about = {"machine": machine(), "quick": args.quick, "repeats": "5" if args.quick else "5 to 7"}
    table = render(rows, about)
    print(table)
    args.json.write_text(json.dumps({**about, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    if args.readme:
        update_readme(args.readme, table)
        print(f"updated: {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
