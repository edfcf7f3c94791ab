"""Bot code's view of one invite the :class:`~callflow.Client` tracks.

Theory of operation
-------------------
An :class:`InviteHandle` holds the :class:`~callflow.Invite` and reads its state, history
and failure straight from it; it never changes the invite. Waiting is an
:class:`anyio.Event`, made only when someone waits and set by the Client each time the
invite moves: :meth:`InviteHandle.wait` and ``async for step in handle`` re-read the
invite after every wake-up, so a waiter that missed several changes still sees them
all, in order.

The Client drives the handle through three methods: :meth:`~InviteHandle.notify` wakes
the waiters, :meth:`~InviteHandle.take_new_steps` hands out each step once (for
``on_state``), and :meth:`~InviteHandle.close` marks the handle closed when the Client
closes with the invite unfinished, so that a waiter raises
:class:`~callflow.CallflowError` instead of waiting for ever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from ._core._invite import Invite
from ._core._machine import InviteState
from ._core._records import Failure, Step
from ._exceptions import CallflowError, InviteFailed

__all__ = ["InviteHandle"]


class InviteHandle:
    """Bot code's view of one invite the :class:`Client` is tracking.

    ``await handle.wait()`` for the outcome; ``async for step in handle`` for each change
    as it happens (from the first, so none is missed).
    """

    __slots__ = ("_changed", "_closed", "_reported", "invite")

    def __init__(self, invite: Invite) -> None:
        self.invite = invite
        self._changed: anyio.Event | None = None
        self._closed = False
        #: How many of the invite's steps the Client has already reported (on_state).
        self._reported = 0

    @property
    def state(self) -> InviteState:
        """The invite's state now."""
        return self.invite.state

    @property
    def history(self) -> tuple[Step, ...]:
        """Every step the invite took, oldest first."""
        return self.invite.history

    @property
    def invite_id(self) -> str:
        """The invite's own id, unique per invite."""
        return self.invite.invite_id

    @property
    def client_context(self) -> str:
        """The invite's clientContext (its correlation key)."""
        return self.invite.client_context

    @property
    def operation_id(self) -> str | None:
        """The operation's id, once known."""
        return self.invite.operation_id

    @property
    def failure(self) -> Failure | None:
        """Why the invite failed, or None."""
        return self.invite.failure

    def take_new_steps(self) -> list[Step]:
        """The steps the invite took since this was last called (each is given once)."""
        new = self.invite.steps_after(self._reported)
        self._reported += len(new)
        return new

    def close(self) -> None:
        """Wake the waiters for good: the Client closed (an unfinished wait raises)."""
        if not self.invite.is_finished:
            self._closed = True
        self._notify()

    def notify(self) -> None:
        """Wake the waiters: the invite changed."""
        self._notify()

    def _notify(self) -> None:
        event = self._changed
        if event is not None:
            self._changed = None
            event.set()

    async def _next_change(self) -> None:
        if self._closed:
            raise CallflowError(
                f"the Client was closed before invite {self.client_context} finished"
            )
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    async def wait(self) -> InviteState:
        """Wait until the invite finishes.

        Cancelling the wait does not cancel the invite.

        Returns:
            ``InviteState.completed``.

        Raises:
            InviteFailed: the invite failed (carrying the HTTP status, Graph's error,
                the resultInfo and the history).
            CallflowError: the Client was closed first.

        """
        while not self.invite.is_finished:  # re-read: a store-backed Client swaps it
            await self._next_change()
        invite = self.invite
        if invite.state is InviteState.failed:
            assert invite.failure is not None
            raise InviteFailed(
                invite.failure, client_context=invite.client_context, history=invite.history
            )
        return invite.state

    async def __aiter__(self) -> AsyncIterator[Step]:
        """Yield each step (not the ignored ones) as it happens, until the invite finishes."""
        index = 0
        while True:
            invite = self.invite  # re-read: a store-backed Client swaps it
            steps = list(invite.history[index:])
            index += len(steps)
            for step in steps:
                if not step.ignored:
                    yield step
            if invite.is_finished:
                return
            await self._next_change()

    def __repr__(self) -> str:
        return f"<InviteHandle {self.invite!r}>"
