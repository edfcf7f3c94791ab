"""A fleet of real bot processes on one real Redis, against a FakeGraph over real HTTP.

Every bot is a process running uvicorn with ``webhook_app`` over a
``Client(store=RedisStore(...))`` (``fleet_support``). The FakeGraph runs in the test
process, served over HTTP by uvicorn, and sends each notification to a random live
instance (as a load balancer would; a callback an instance fails to take goes to
another, as Graph retries it). Everything is on 127.0.0.1 and bounded in time.

The test process serves with uvicorn, so these tests run on asyncio; the Client's
behaviour on a store is proved on trio too in ``test_fleet_client``.
"""

from __future__ import annotations

import collections
import random
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

import callflow
from callflow import InviteState
from callflow._fleet import fingerprint_of
from callflow._redis import RedisStore
from callflow.testing import (
    Accepts,
    Declines,
    DelayNotifications,
    DropAfterTaking,
    DropNotifications,
    DuplicateNotifications,
    FailAfterTaking,
    FakeGraph,
    NeverAnswers,
    NotifyBeforeAnswer,
    ReorderNotifications,
    Throttle,
)
from fleet_support import Fleet, fleet, front_app, serving
from redis_support import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves on asyncio


def participant(phone: str) -> list[dict[str, Any]]:
    return [{"identity": {"phone": {"id": phone}}}]


class Callbacks:
    """The FakeGraph's callback sender: a random live instance, another if it fails.

    Each callback is sent from its own task in ``tg``, as Graph sends them (concurrently;
    one slow instance does not hold back the others). One that no instance takes fails
    the test (the task group raises). With ``patience``, it keeps trying that long while
    no instance is up (a restart). :meth:`settled` waits for those still on their way.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        live: list[int],
        rng: random.Random,
        tg: anyio.abc.TaskGroup,
        *,
        patience: float = 0.0,
    ) -> None:
        self.http, self.live, self.rng, self.tg, self.patience = http, live, rng, tg, patience
        self.failures: list[str] = []
        self.pending = 0
        self._idle = anyio.Event()

    async def deliver(self, body: dict[str, Any]) -> None:
        self.pending += 1
        self.tg.start_soon(self._send, body)

    async def settled(self) -> None:
        while self.pending:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def _send(self, body: dict[str, Any]) -> None:
        try:
            await self._try(body)
        finally:
            self.pending -= 1
            if not self.pending:
                self._idle.set()

    async def _try(self, body: dict[str, Any]) -> None:
        given_up = anyio.current_time() + self.patience
        with anyio.fail_after(self.patience + 30):
            while True:
                for port in self.rng.sample(self.live, len(self.live)):
                    try:
                        response = await self.http.post(
                            f"http://127.0.0.1:{port}/callback", json=body, timeout=5
                        )
                    except httpx.TransportError as exc:
                        self.failures.append(f"{port}: {exc!r}")
                        continue  # dead, or died while taking it: Graph retries elsewhere
                    if response.status_code == 202:
                        return
                    self.failures.append(f"{port}: {response.status_code} {response.text}")
                if not self.patience or anyio.current_time() > given_up:
                    last = self.failures[-5:]
                    raise httpx.ConnectError(f"no instance took the callback: {last}")
                await anyio.sleep(0.1)


async def invite(http: httpx.AsyncClient, port: int, phone: str, context: str) -> dict[str, Any]:
    call_id = str(uuid.uuid4())
    body = {"call_id": call_id, "participants": participant(phone), "client_context": context}
    response = await http.post(f"http://127.0.0.1:{port}/invite", json=body, timeout=30)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def final_states(store: RedisStore, ids: dict[str, str]) -> dict[str, callflow.Invite]:
    """Each invite folded from the store, once every one is terminal (at most 60 s)."""
    folded: dict[str, callflow.Invite] = {}
    with anyio.fail_after(60):
        while True:
            for context, invite_id in ids.items():
                if context not in folded or not folded[context].is_finished:
                    folded[context] = callflow.replay(await store.inputs(invite_id))
            if all(i.is_finished for i in folded.values()):
                return folded
            await anyio.sleep(0.25)


async def test_three_instances_one_sigkilled_every_invite_ends_as_scripted(
    redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(14)
    graph_port, ports = free_port(), [free_port() for _ in range(3)]
    victim = ports[2]
    prefix = f"fleet-{uuid.uuid4().hex[:8]}"
    scripts: dict[str, Accepts | Declines | NeverAnswers] = {}
    fake = FakeGraph(default_answer=Accepts(after=0.3), ring_timeout=2.0, assert_all_used=False)
    ids: dict[str, str] = {}  # clientContext -> invite id
    phones: dict[str, str] = {}
    live = list(ports)
    async with (
        httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=500)) as http,
        anyio.create_task_group() as callbacks,
        fake,
        serving(front_app(fake), graph_port),
        RedisStore(redis_url, prefix=prefix) as store,
    ):
        with fleet(redis_url, prefix, f"http://127.0.0.1:{graph_port}/v1.0", tmp_path) as bots:
            for port in ports:
                bots.start(port)
            for port in ports:
                await bots.ready(http, port)
            sender = Callbacks(http, live, rng, callbacks)
            fake.deliver_to(sender.deliver)

            def plan(n: int) -> tuple[str, str]:
                phone, context = f"+1555{n:07d}", f"fleet-{n}"
                kind = n % 10
                answer: Accepts | Declines | NeverAnswers = Accepts(after=0.2 + (n % 7) / 10)
                if kind in (7, 8):
                    answer = Declines(code=603, after=0.3)
                elif kind == 9:
                    answer = NeverAnswers()
                scripts[context] = answer
                fake.script(phone, answer)
                phones[context] = phone
                return phone, context

            limiter = anyio.CapacityLimiter(12)

            async def send(n: int, port: int) -> None:
                phone, context = plan(n)
                async with limiter:
                    ids[context] = (await invite(http, port, phone, context))["invite_id"]

            def http_faults() -> None:
                for _ in range(6):
                    fake.fault(Throttle(retry_after=None), FailAfterTaking(503), DropAfterTaking())

            # Phase 1: 150 invites spread over the three, faults mixed in.
            http_faults()
            fake.fault(
                DuplicateNotifications(times=60),
                ReorderNotifications(times=30),
                DelayNotifications(0.2, times=40),
                NotifyBeforeAnswer(times=25),
            )
            async with anyio.create_task_group() as tg:
                for n in range(150):
                    tg.start_soon(send, n, ports[n % 3])
            # Phase 2: 15 invites through the victim, 8 whose completion never comes (only
            # a deadline can end them), then SIGKILL while all 15 are in flight.
            fake.fault(DropNotifications(only="operation", times=8))
            for n in range(150, 165):
                await send(n, victim)
            bots.kill(victim)
            live.remove(victim)
            # Phase 3: 135 more through the survivors, faults again.
            http_faults()
            fake.fault(DuplicateNotifications(times=40), NotifyBeforeAnswer(times=20))
            async with anyio.create_task_group() as tg:
                for n in range(165, 300):
                    tg.start_soon(send, n, ports[n % 2])
            folded = await final_states(store, ids)  # the dropped ones: DEADLINE s
            await fake.drain()
            await sender.settled()
            await anyio.sleep(2.0 + 1.5)  # release_after, then a claim
            left = await store._redis.zcard(store._deadlines)

    assert 300 == len(ids) == len(folded)
    # Exactly one POST taken per invite; only 429s (never taken) came before it.
    posts = collections.defaultdict(list)
    for request in fake.requests:
        if request.method == "POST":
            posts[request.body["clientContext"]].append(request)
    assert set(posts) == set(ids)
    for context, requests in posts.items():
        assert [r.answer == "429" for r in requests] == [True] * (len(requests) - 1) + [False]
        assert requests[-1].taken, context
    operation_of = {c: r[-1].operation_id for c, r in posts.items()}
    sent_ops = {s.operation_id for s in fake.sent if s.label == "operation" and s.error is None}
    dropped = {c for c, op in operation_of.items() if op not in sent_ops}
    assert 8 == len(dropped), "the 8 dropped completions, and only those"
    assert all(int(c.split("-")[1]) in range(150, 158) for c in dropped)
    # Every invite ends as its script implies; a lost completion ends by a deadline.
    for context, invite_ in folded.items():
        answer = scripts[context]
        if context in dropped:  # its deadline cancelled it: the DELETE stopped the ring
            assert invite_.failure is not None
            expected = (InviteState.cancelled, callflow.FailureReason.timeout)
            assert expected == (invite_.state, invite_.failure.reason), context
        else:
            expected_state = (
                InviteState.completed if isinstance(answer, Accepts) else InviteState.failed
            )
            post = posts[context][-1].at
            sent_after = [
                (s.label, round(s.at - post, 2))
                for s in fake.sent
                if s.operation_id == operation_of[context]
            ]
            assert expected_state == invite_.state, (context, sent_after, invite_.history)
    # No notification applied twice, none lost: every delivered completion is stored once.
    async with RedisStore(redis_url, prefix=prefix) as reader:
        for context, invite_id in ids.items():
            stored = await reader.inputs(invite_id)
            prints = [
                fingerprint_of(callflow.parse_notifications(e["notification"])[0])
                for e in stored
                if e["type"] == "notification"
            ]
            assert len(prints) == len(set(prints)), context
            assert sum(e["type"] == "timeout" for e in stored) <= 1, context
            if context not in dropped:
                completions = [
                    e
                    for e in stored
                    if e["type"] == "notification"
                    and "operations" in e["notification"]["resourceUrl"]
                ]
                assert 1 == len(completions), context
    duplicated = collections.Counter(
        (s.operation_id, s.label) for s in fake.sent if s.error is None
    )
    assert any(count > 1 for count in duplicated.values()), "duplicates were delivered"
    assert 0 == left, "every finished invite was released (no deadline left)"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_restart_the_only_instance_mid_invite_and_attach(
    how: str, redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(1)
    graph_port, port = free_port(), free_port()
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    fake = FakeGraph(default_answer=Accepts(after=1.5))
    async with (
        httpx.AsyncClient(timeout=30) as http,
        anyio.create_task_group() as callbacks,
        fake,
        serving(front_app(fake), graph_port),
    ):
        bots: Fleet
        with fleet(redis_url, prefix, f"http://127.0.0.1:{graph_port}/v1.0", tmp_path) as bots:
            bots.start(port)
            await bots.ready(http, port)
            sender = Callbacks(http, [port], rng, callbacks, patience=20)
            fake.deliver_to(sender.deliver)
            sent = await invite(http, port, "+15550001111", "restart-1")
            assert "running" == sent["state"]
            if how == "SIGKILL":
                bots.kill(port)
            else:
                assert 0 == bots.stop(port)
            await anyio.sleep(2.0)  # the participant answers while no instance is up
            bots.start(port)
            await bots.ready(http, port)
            with anyio.fail_after(20):
                response = await http.post(
                    f"http://127.0.0.1:{port}/wait", json={"client_context": "restart-1"}
                )
            await fake.drain()
            await sender.settled()  # the roster after the completion, before the bot goes
    assert {"invite_id": sent["invite_id"], "state": "completed"} == response.json()
    assert 1 == len(fake.requests)
