"""The clock seam: where callflow reads the time and waits.

The core never reads the time itself; it is told (``at=``). The engine reads and waits
through a :class:`Clock`, so tests can swap in :class:`callflow.testing.VirtualClock` and
let deadlines, timeouts and Retry-After pass instantly.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the engine needs of a clock: the time now, and a way to wait."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock; cancellable like ``anyio.sleep``."""
        ...


class SystemClock:
    """Real time: ``time.monotonic`` and ``anyio.sleep``. The default outside tests."""

    __slots__ = ()

    def now(self) -> float:
        """The monotonic time in seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait through anyio, so asyncio and trio both work."""
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
