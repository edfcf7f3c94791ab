"""A virtual clock: deadlines, timeouts and Retry-After pass instantly in tests.

Theory of operation
-------------------
Time stands still until it is moved: by :meth:`VirtualClock.advance` (a test moves it on
explicitly, step by step), or by :meth:`VirtualClock.autojump`, a task that waits until
every other task is blocked (``anyio.wait_all_tasks_blocked``) and then jumps to the
earliest sleeper's wake-up time, as Temporal's time-skipping test server and trio's
``MockClock(autojump_threshold=0)`` do. Sleepers are woken in deadline order.

Autojump is for tests whose I/O is in-process (``httpx.MockTransport``, the fake Graph
service): a task blocked on a real socket also counts as blocked, and time would jump
under it. Tests over real sockets use the real clock.
"""

from __future__ import annotations

import heapq
import itertools

import anyio
import anyio.lowlevel

__all__ = ["VirtualClock"]


class VirtualClock:
    """A clock that moves only when told to, or when everything waits on it.

    Args:
        start: the time it starts at.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()
        self._new_sleeper: anyio.Event | None = None

    def now(self) -> float:
        """The virtual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the virtual time has moved on by ``seconds``."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), event))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        await event.wait()

    @property
    def next_wakeup(self) -> float | None:
        """When the earliest sleeper wakes, or None when nobody sleeps."""
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` and wake every sleeper that is due."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        self._wake_due()

    def advance_to(self, when: float) -> None:
        """Move time on to ``when`` (no-op if it is already past)."""
        if when > self._now:
            self._now = when
        self._wake_due()

    def _wake_due(self) -> None:
        sleepers = self._sleepers
        while sleepers and sleepers[0][0] <= self._now:
            heapq.heappop(sleepers)[2].set()

    async def autojump(self) -> None:
        """Run forever (in a task): whenever all other tasks block, jump to the next wake-up.

        Start it in a task group and cancel the group when done.
        """
        while True:
            await anyio.wait_all_tasks_blocked()
            when = self.next_wakeup
            if when is None:
                self._new_sleeper = anyio.Event()
                await self._new_sleeper.wait()
                self._new_sleeper = None
                continue
            self.advance_to(when)
            await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<VirtualClock t={self._now:.3f} sleepers={len(self._sleepers)}>"
