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

:meth:`~InviteHandle.cancel` and :meth:`~InviteHandle.remove` need the engine (they send
DELETEs): the Client hands the handle two coroutine functions when it makes it, so the
handle never holds the Client itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from ._core._invite import Invite
from ._core._machine import InviteState
from ._core._records import Failure, Step
from ._exceptions import CallflowError, InviteFailed, RemoveFailed

__all__ = ["InviteHandle"]

Canceller = Callable[[Invite], Awaitable[InviteState]]
Remover = Callable[[str, str], Awaitable[bool]]


class InviteHandle:
    """Bot code's view of one invite the :class:`Client` is tracking.

    ``await handle.wait()`` for the outcome; ``async for step in handle`` for each change
    as it happens (from the first, so none is missed).
    """

    __slots__ = ("_canceller", "_changed", "_closed", "_remover", "_reported", "invite")

    def __init__(
        self,
        invite: Invite,
        *,
        canceller: Canceller | None = None,
        remover: Remover | None = None,
    ) -> None:
        self.invite = invite
        self._canceller = canceller
        self._remover = remover
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
        await self._finished()
        invite = self.invite
        if invite.state is not InviteState.completed:
            assert invite.failure is not None
            raise InviteFailed(
                invite.failure, client_context=invite.client_context, history=invite.history
            )
        return invite.state

    async def _finished(self) -> InviteState:
        while not self.invite.is_finished:  # re-read: a store-backed Client swaps it
            await self._next_change()
        return self.invite.state

    async def cancel(self) -> InviteState:
        """Cancel the invite: stop the ringing, and wait until the invite ends.

        In ``requested`` or ``running`` the Client sends
        ``DELETE /communications/calls/{id}/participants/{participantId}`` (retried on
        429 and 5xx: a DELETE is idempotent); the invite ends ``cancelled`` with
        ``failure.reason == FailureReason.cancelled``. A participant who joined while the
        DELETE was under way is hung up by it (the history shows both). Before the POST
        is answered, the invite waits in ``cancelling`` for the participant id (from the
        answer, or a roster entry matching the invitee), bounded by the ``cancelling``
        deadline.

        Idempotent and safe from any task: a second cancel joins the first. It changes
        nothing on an invite that has finished, nor in ``tearing_down_original``: a
        participant who joined is not hung up (use :meth:`remove` for that).

        Returns:
            The state the invite ends in: ``cancelled``; ``completed`` (it had
            completed, or completes in ``tearing_down_original``); ``failed`` (it had
            failed, or the DELETE could not be done: reason ``cancel_failed``, the
            participant may still be ringing). It does not raise :class:`InviteFailed`;
            read :attr:`failure`.

        Raises:
            CallflowError: the handle has no Client, or the Client was closed first.

        """
        if self._canceller is None:
            raise CallflowError("this handle has no Client to send the DELETE")
        await self._canceller(self.invite)
        return await self._finished()

    async def remove(self) -> bool:
        """Remove (hang up) the invite's participants from the call, whatever its state.

        One DELETE per participant whose id is known; the invite's state does not
        change. This is what a workflow does to a second participant who joined: a
        cancel leaves a completed invite alone.

        Returns:
            True when the DELETEs hung someone up (204), False when all were already
            gone (404).

        Raises:
            RemoveFailed: a participant's id is not known, or a DELETE could not be done.
            CallflowError: the handle has no Client, or the Client is closed.

        """
        if self._remover is None:
            raise CallflowError("this handle has no Client to send the DELETE")
        invite = self.invite
        removed = False
        for pid in invite.participant_ids:
            if pid is None:
                raise RemoveFailed(
                    "the participant's id is not known (no answer or roster gave it)",
                    call_id=invite.call_id,
                    participant_id=None,
                    status_code=None,
                )
        for pid in invite.participant_ids:
            assert pid is not None
            removed = await self._remover(invite.call_id, pid) or removed
        return removed

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
