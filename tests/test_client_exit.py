"""Leaving ``async with Client``: what the body raised comes out as it was raised.

The Client runs its timer and callback lanes in a task group; anyio wraps whatever
crosses a task group's exit in an ExceptionGroup, so the Client keeps the body's
exception out of it. ``except callflow.InviteFailed`` around the block must work.
"""

from __future__ import annotations

import anyio
import pytest

import callflow
from callflow.testing import Declines, FakeGraph, VirtualClock

pytestmark = pytest.mark.anyio

PSTN = {"identity": {"phone": {"id": "+12345678901"}}}


async def invite_declined(fake: FakeGraph, clock: VirtualClock) -> None:
    """Invite a participant who declines, and wait for the outcome, inside the block."""
    fake.script("+12345678901", Declines())
    async with (
        fake.http_client() as http,
        callflow.Client(http, clock=clock) as client,
    ):
        fake.deliver_to(client)
        handle = await client.invite("ab6233a5-20b7-4c5e-bea2-ce56c9776429", [PSTN])
        await handle.wait()


async def test_invite_failed_raised_in_the_body_leaves_the_client_unwrapped(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    with pytest.raises(callflow.InviteFailed):
        await invite_declined(fake_graph, virtual_clock)


async def test_any_exception_raised_in_the_body_leaves_the_client_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with callflow.Client(token="t"):
            raise KeyError("mine")


async def test_a_cancelled_body_leaves_the_client_closed() -> None:
    client = callflow.Client(token="t")
    with anyio.move_on_after(0.01) as scope:
        async with client:
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert "closed" in repr(client)
