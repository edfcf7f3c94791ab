"""The engine under load (issue 17, items 6 and 10): a big roster on a busy call, a flood.

* A body whose rosters fan out to hundreds of invites is applied in parts of bounded
  work, and the event loop runs between parts: a heartbeat task ticks during the body.
  This is structural (work per part, turns the loop gets), never a timed assertion.
* A slow ``on_unmatched`` under a flood holds a bounded queue; what is dropped is counted
  in ``Client.callbacks_dropped`` and logged, once when dropping starts and once when the
  queue has drained.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import callflow
from callflow import ConfigurationError, DeliveryOutcome, NotificationError
from callflow.testing import Operation, VirtualClock, operation_notification, roster_notification
from test_client import GRAPH, TOKEN, InviteEndpoint
from test_reliability import CALL_ID, PARTICIPANTS, Service, settle

pytestmark = pytest.mark.anyio

INVITES = 200
ROSTERS = 30
WORK = 500  # offers per part: 2 rosters of 200 invites each


def roster(number: int, call_id: str = CALL_ID) -> dict[str, Any]:
    """A roster of the call showing participant ``p-number`` (distinct news each)."""
    op = Operation(
        id=f"op-r{number}",
        call_id=call_id,
        participants=PARTICIPANTS,
        participant_ids=(f"p-{number}",),
    )
    return roster_notification(op)


def one_body(*bodies: dict[str, Any]) -> dict[str, Any]:
    """The notifications of several bodies in one body, in order."""
    merged = copy.deepcopy(bodies[0])
    merged["value"] = [n for body in bodies for n in body["value"]]
    return merged


def big_body() -> dict[str, Any]:
    return one_body(*(roster(i) for i in range(ROSTERS)))


def busy_board() -> tuple[callflow.Switchboard, list[callflow.Invite]]:
    board = callflow.Switchboard()
    invites = [
        callflow.Invite(CALL_ID, PARTICIPANTS, client_context=f"ctx-{i}") for i in range(INVITES)
    ]
    for invite in invites:
        board.add(invite, at=0.0)
    return board, invites


@asynccontextmanager
async def busy_client(**options: Any) -> AsyncIterator[callflow.Client]:
    """An open Client with INVITES invites running on one call."""
    clock = VirtualClock()
    endpoint = InviteEndpoint(clock, Service())
    async with (
        httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http,
        callflow.Client(http, token=TOKEN, clock=clock, work_per_part=WORK, **options) as c,
    ):
        for i in range(INVITES):
            await c.invite(CALL_ID, PARTICIPANTS, client_context=f"ctx-{i}")
        yield c


class Heartbeat:
    """A task that ticks each time the event loop gives it a turn."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await anyio.lowlevel.checkpoint()


# -- 6. a big roster on a busy call --------------------------------------------------------


def test_each_part_does_at_most_its_work_and_all_parts_do_what_receive_does() -> None:
    board, _ = busy_board()
    parts = list(board.receive_in_parts(board_body := _parsed(big_body()), work_per_part=WORK))
    assert ROSTERS * INVITES // WORK < len(parts)
    assert all(len(p.deliveries) <= WORK for p in parts)
    whole, _ = busy_board()
    expected = whole.receive(board_body)
    assert [(d.outcome, d.reason) for d in expected.deliveries] == [
        (d.outcome, d.reason) for p in parts for d in p.deliveries
    ]


def test_a_notification_with_more_work_than_a_part_is_a_part_of_its_own() -> None:
    board, _ = busy_board()
    parts = list(board.receive_in_parts(_parsed(big_body()), work_per_part=10))
    assert [INVITES] * ROSTERS == [len(p.deliveries) for p in parts]


def _parsed(body: dict[str, Any]) -> list[callflow.CommsNotification]:
    return list(callflow.parse_notifications(body))


async def test_the_event_loop_runs_between_the_parts_of_a_big_body() -> None:
    heartbeat = Heartbeat()
    async with busy_client() as client, anyio.create_task_group() as tg:
        tg.start_soon(heartbeat.run)
        await anyio.lowlevel.checkpoint()  # (all tasks never block: the heartbeat runs)
        before = heartbeat.ticks
        receipt = await client.receive_notifications(big_body())
        during = heartbeat.ticks - before
        tg.cancel_scope.cancel()
    assert ROSTERS * INVITES == len(receipt.of(DeliveryOutcome.applied))
    # One part is WORK offers; the heartbeat had a turn after each part but the last.
    assert ROSTERS * INVITES // WORK - 1 <= during


async def test_a_body_arriving_during_a_big_one_is_applied_after_it() -> None:
    last = roster(999)
    receipts: list[callflow.Receipt] = []
    async with busy_client() as client:
        async with anyio.create_task_group() as tg:

            async def receive(body: dict[str, Any]) -> None:
                receipts.append(await client.receive_notifications(body))

            tg.start_soon(receive, big_body())
            await anyio.lowlevel.checkpoint()  # the big body has started
            tg.start_soon(receive, last)
        expected = last["value"][0]
        assert all(
            invite.roster is not None and expected == invite.roster.to_json()
            for invite in client.switchboard
        )
    assert [ROSTERS * INVITES, INVITES] == [len(r.deliveries) for r in receipts]


async def test_a_big_body_with_one_malformed_item_at_the_end_applies_nothing() -> None:
    bad = roster(1000)
    bad["value"][0]["resourceData"][0]["id"] = 5  # a participant id must be a string
    async with busy_client() as client:
        with pytest.raises(NotificationError, match=r"value\[30\]"):
            await client.receive_notifications(one_body(big_body(), bad))
        assert all(invite.roster is None for invite in client.switchboard)


async def test_a_big_body_is_applied_whole_when_its_request_is_cancelled_midway() -> None:
    async with busy_client() as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.receive_notifications, big_body())
                await anyio.lowlevel.checkpoint()
                scope.cancel()
        expected = roster(ROSTERS - 1)["value"][0]
        assert all(
            invite.roster is not None and expected == invite.roster.to_json()
            for invite in client.switchboard
        )


# -- 10. a slow on_unmatched under a flood -------------------------------------------------


def stray(number: int, call_id: str) -> dict[str, Any]:
    """An operation's end for a clientContext no invite has."""
    op = Operation(
        id=f"op-{number}", call_id=call_id, client_context=f"x-{number}", participants=PARTICIPANTS
    )
    return operation_notification(op)


@pytest.mark.parametrize("calls", ["one call", "a call each"])
async def test_a_slow_on_unmatched_under_a_flood_queues_at_most_the_limit_and_counts_drops(
    calls: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="callflow")
    release = anyio.Event()
    heard: list[callflow.Delivery] = []

    async def slow(delivery: callflow.Delivery) -> None:
        await release.wait()
        heard.append(delivery)

    endpoint = InviteEndpoint(VirtualClock(), Service())
    async with (
        httpx.AsyncClient(transport=endpoint.transport(), base_url=GRAPH) as http,
        callflow.Client(
            http, token=TOKEN, on_unmatched=slow, backlog_limit=0, callback_limit=100
        ) as client,
    ):
        for i in range(1000):
            call_id = CALL_ID if calls == "one call" else f"call-{i}"
            receipt = await client.receive_notifications(stray(i, call_id))
            assert [DeliveryOutcome.unmatched] == [d.outcome for d in receipt.deliveries]
        assert {"on_unmatched": 900} == dict(client.callbacks_dropped)
        full = [r for r in caplog.records if "callback queue full" in r.getMessage()]
        assert 1 == len(full)
        release.set()
        await settle()
        assert 100 == len(heard)
        drained = [r for r in caplog.records if "dropped while full" in r.getMessage()]
        [message] = [r.getMessage() for r in drained]
        assert "900 calls were dropped while full" in message
        await client.receive_notifications(stray(5000, CALL_ID))
        await settle()
        assert 101 == len(heard)  # drained: calls are made again
        assert 900 == client.callbacks_dropped["on_unmatched"]


@pytest.mark.parametrize("option", ["callback_limit", "work_per_part"])
def test_limits_below_one_are_refused(option: str) -> None:
    options: dict[str, Any] = {option: 0}
    with pytest.raises(ConfigurationError, match=option):
        callflow.Client(token=TOKEN, **options)
