"""callflow's pytest plugin, registered through the ``pytest11`` entry point.

A project that installs callflow gets these fixtures with no conftest:

* ``virtual_clock``: a :class:`~callflow.testing.VirtualClock` whose autojump task runs
  for the test (use it with ``@pytest.mark.anyio`` tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from ._clock import VirtualClock

__all__ = ["virtual_clock"]


@pytest.fixture
async def virtual_clock() -> AsyncIterator[VirtualClock]:
    """A virtual clock that jumps ahead whenever every task waits on it."""
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump, name="callflow virtual clock")
        yield clock
        tg.cancel_scope.cancel()
