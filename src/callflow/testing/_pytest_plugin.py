"""callflow's pytest plugin, registered through the ``pytest11`` entry point.

A project that installs callflow gets these fixtures with no conftest. They are async
fixtures for anyio tests: mark the test ``@pytest.mark.anyio`` (the anyio pytest plugin
provides the marker and the ``anyio_backend`` fixture, which a module may parametrize to
run on asyncio and trio).

* ``virtual_clock``: a :class:`~callflow.testing.VirtualClock` whose autojump task runs
  for the test: whenever every task waits, time jumps to the next wake-up.
* ``fake_graph``: a running :class:`~callflow.testing.FakeGraph` on ``virtual_clock``,
  delivering automatically (set ``fake_graph.manual = True`` to step through).
* ``callflow_client``: an open :class:`~callflow.Client` that sends its invites through
  ``fake_graph``'s transport, runs on ``virtual_clock``, and that ``fake_graph``
  delivers its notifications to. Its retries have no jitter, so runs repeat exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from .._client import Client
from .._core._retry import RetryPolicy
from ._clock import VirtualClock
from ._fake import FakeGraph

__all__ = ["virtual_clock", "fake_graph", "callflow_client"]


@pytest.fixture
async def virtual_clock() -> AsyncIterator[VirtualClock]:
    """A virtual clock that jumps ahead whenever every task waits on it."""
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump, name="callflow virtual clock")
        yield clock
        tg.cancel_scope.cancel()


@pytest.fixture
async def fake_graph(virtual_clock: VirtualClock) -> AsyncIterator[FakeGraph]:
    """A fake Graph calls service on the virtual clock, running for the test."""
    async with FakeGraph(clock=virtual_clock) as fake:
        yield fake


@pytest.fixture
async def callflow_client(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> AsyncIterator[Client]:
    """A Client wired to ``fake_graph`` both ways, on the virtual clock."""
    async with (
        fake_graph.http_client() as http,
        Client(
            http,
            token="callflow-test-token",  # noqa: S106 - the fake accepts any bearer token
            clock=virtual_clock,
            retry=RetryPolicy(jitter=False),
        ) as client,
    ):
        fake_graph.deliver_to(client)
        yield client
        fake_graph.deliver_to(None)
