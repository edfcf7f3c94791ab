"""The async engine for workflows: a :class:`WorkflowRun` performed through a Client.

Theory of operation
-------------------
A :class:`WorkflowHandle` owns one sans-I/O :class:`~callflow._core._flow_run.WorkflowRun`
and performs what it asks, in the :class:`~callflow.Client`'s task group:

* :class:`StartInvite` -> ``client.invite(call_id, [participant])`` in a task of its own,
  then a watcher waits for that invite to finish and feeds its outcome back.
* :class:`CancelInvite` -> ``await invite.cancel()`` (the invite's own DELETE); the
  watcher reports how it ended. :class:`RemoveParticipant` -> ``await invite.remove()``
  (a DELETE of a participant who joined), fed back as ``removed`` or ``remove_failed``.
* :class:`SetTimer` -> one timer task at a time, on the Client's clock.
* :class:`Done` -> :meth:`WorkflowHandle.wait` returns the result.

Inputs are fed synchronously, each with the clock's time when it is fed, so they reach the
run one at a time and in time order, from whichever task saw them. Nothing here decides:
which invite rings next, who wins, who is removed, all of it is read off the declaration
by the run. The engine only translates an invite's end into a workflow outcome
(:func:`outcomes_of`): ``completed``; ``failed`` (declined, refused, the call ended);
``timed_out`` (its own deadline); ``cancelled``; ``cancel_failed`` (the DELETE could not
be done: it may still ring); and a participant who joined while their cancel was under
way and was removed by it is ``cancelled`` then ``completed``, which the run reads as
removed. A completion the service reports for an invite that has already ended (after a
failed cancel: the late answer) reaches the engine through the Client, and is fed as
``completed``.

Every input is written to the Client's recorder (``workflow_…`` events, see
:func:`~callflow._core._flow_run.flow_event`), and the result last, so
``callflow replay`` reproduces the workflow's path.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs

from ._core._flow_run import (
    CancelInvite,
    CancelRequested,
    Done,
    FlowAction,
    FlowInput,
    FlowResult,
    FlowStarted,
    InviteReached,
    RemoveParticipant,
    SetTimer,
    StartInvite,
    TimerFired,
    WorkflowRun,
    flow_event,
    flow_result_event,
)
from ._core._flows import Fate, Outcome, Workflow, WorkflowError, hunt, ring_group
from ._core._machine import InviteState, Trigger
from ._core._models import InvitationParticipantInfo
from ._core._notifications import NotificationKind
from ._core._records import FailureReason, Step
from ._exceptions import CallflowError
from ._ids import Invite, new_id

if TYPE_CHECKING:
    from ._client import Client
    from ._core._switchboard import Delivery
    from ._handle import InviteHandle

__all__ = [
    "InviteInto",
    "WorkflowHandle",
    "ParticipantSpec",
    "OUTCOMES",
    "outcomes_of",
    "start_workflow",
    "builtin",
]

logger = logging.getLogger("callflow")


@attrs.frozen
class InviteInto:
    """A workflow participant invited into another call than the workflow's own.

    For example, moving the caller into a voicemail meeting (a ``move_meeting`` invite:
    ``replacesCallId`` and ``participantId`` name where the caller is now).

    Attributes:
        call_id: the call to invite into.
        participant: an ``InvitationParticipantInfo`` or a spec-shaped mapping.

    """

    call_id: str
    participant: InvitationParticipantInfo | Mapping[str, Any]


ParticipantSpec = InvitationParticipantInfo | Mapping[str, Any] | InviteInto

_S, _R, _O = InviteState, FailureReason, Outcome

#: How an invite's end reads to its workflow: ``{(state, failure reason): outcome}``;
#: any other failure (declined, refused, the call ended) is ``failed``.
OUTCOMES: Final[Mapping[tuple[InviteState, FailureReason | None], Outcome]] = {
    (_S.completed, None): _O.completed,
    (_S.cancelled, _R.cancelled): _O.cancelled,
    (_S.cancelled, _R.timeout): _O.timed_out,  # its own deadline cancelled it
    (_S.failed, _R.timeout): _O.timed_out,
    (_S.failed, _R.outcome_unknown): _O.timed_out,
    (_S.failed, _R.cancel_failed): _O.cancel_failed,  # it may still ring
}


def outcomes_of(
    history: Sequence[Step], state: InviteState, reason: FailureReason | None
) -> list[Outcome]:
    """What a finished invite reports to its workflow, in order (read off :data:`OUTCOMES`).

    Args:
        history: the invite's steps.
        state: its terminal state.
        reason: its failure reason, if any.

    Returns:
        One outcome; then ``completed`` too when the participant joined while the cancel
        was under way: after ``cancelled`` the run reads it as removed by that DELETE,
        after ``cancel_failed`` as in the call (a late answer).

    """
    joined_while_cancelling = any(
        step.trigger is Trigger.operation_completed
        and step.source is InviteState.cancelling
        and not step.ignored
        for step in history
    )
    outcome = OUTCOMES.get((state, reason), Outcome.failed)
    if joined_while_cancelling and state is InviteState.cancelled:
        return [Outcome.cancelled, Outcome.completed]  # whatever the cancel's cause
    if joined_while_cancelling and outcome is Outcome.cancel_failed:
        return [outcome, Outcome.completed]
    return [outcome]


@functools.lru_cache(maxsize=64)
def builtin(name: str, participants: int, ring_for: float, settle_for: float) -> Workflow:
    """A built-in declaration (``hunt`` or ``ring_group``), built once per shape."""
    make = hunt if name == "hunt" else ring_group
    return make(participants, ring_for=ring_for, settle_for=settle_for)


class WorkflowHandle:
    """Bot code's view of one workflow the :class:`~callflow.Client` is running.

    ``result = await handle.wait()`` for how it ended (``result.answered`` is the index of
    the participant who joined, or None); ``await handle.cancel()`` stops it, cancelling
    every invite that still rings.
    """

    def __init__(
        self,
        client: Client,
        call_id: str,
        participants: Sequence[tuple[str, InvitationParticipantInfo | Mapping[str, Any]]],
        workflow: Workflow,
        *,
        timeout: float | None,
        workflow_id: str,
    ) -> None:
        self._client = client
        self.call_id = call_id
        self.workflow = workflow
        #: The id every trace event of this run carries.
        self.workflow_id = workflow_id
        #: The sans-I/O run: its ``state``, ``fates`` and ``steps`` (read them, never feed).
        self.run = WorkflowRun(workflow)
        self._targets = participants
        self._timeout = timeout
        self._invites: list[InviteHandle | None] = [None] * workflow.participants
        self._started = [anyio.Event() for _ in range(workflow.participants)]
        self._done = anyio.Event()
        self._closed = False
        self._timer: anyio.CancelScope | None = None
        self._last_at = float("-inf")
        self._broken: Exception | None = None

    # -- what bot code reads ---------------------------------------------------------------

    @property
    def invites(self) -> tuple[InviteHandle | None, ...]:
        """Each participant's :class:`~callflow.InviteHandle`, by index (None until started)."""
        return tuple(self._invites)

    @property
    def state(self) -> str | None:
        """The workflow's state now (None before it starts)."""
        return self.run.state

    @property
    def result(self) -> FlowResult | None:
        """How the workflow ended, once it has."""
        return self.run.result

    async def wait(self) -> FlowResult:
        """Wait until the workflow ends.

        Cancelling the wait does not cancel the workflow.

        Returns:
            The :class:`FlowResult`: ``answered`` (an index or None), ``outcome`` (the
            final state), and what happened to each invite (``invites``, ``removed``,
            ``late_answers``).

        Raises:
            CallflowError: the Client was closed first, or the run raised (a bug: it is
                logged, the workflow stops there and its ringing invites are cancelled,
                and the Client and its other invites carry on).

        """
        await self._done.wait()
        result = self.run.result
        if self._broken is not None:
            raise CallflowError(
                f"workflow {self.workflow.name} ({self.workflow_id}) stopped: its run raised "
                f"{self._broken!r}; the invites it had started were cancelled"
            ) from self._broken
        if result is None:
            raise CallflowError(
                f"the Client was closed before workflow {self.workflow.name} "
                f"({self.workflow_id}) ended"
            )
        return result

    async def cancel(self) -> FlowResult:
        """Stop the workflow, cancelling every invite that still rings, and wait for its end.

        Idempotent, safe from any task. After someone has answered, or after the end, it
        changes nothing (the participant who joined stays in the call).

        Returns:
            The :class:`FlowResult` (``outcome`` is ``cancelled`` unless it had ended).

        Raises:
            CallflowError: the Client was closed first.

        """
        if not self.run.done and not self._closed:
            self._feed(CancelRequested(at=self._now()))
        return await self.wait()

    # -- the engine ------------------------------------------------------------------------

    async def _begin(self) -> None:
        client = self._client
        tg = client._task_group()
        tg.start_soon(self._guard, name=f"callflow workflow {self.workflow_id}")
        self._feed(FlowStarted(at=self._now()))
        # Like client.invite: return once the first invites' POSTs are answered.
        for i, fate in enumerate(self.run.fates):
            if fate is not Fate.not_invited:
                await self._started[i].wait()
        if self._broken is not None:
            await self.wait()  # raises, saying why

    async def _guard(self) -> None:
        """Wake the waiters for good when the Client closes first."""
        try:
            await self._done.wait()
        finally:
            if not self._done.is_set():
                self._closed = True
                self._done.set()

    def _now(self) -> float:
        """The clock's time, never earlier than the last input's (the run refuses that)."""
        return max(self._client.clock.now(), self._last_at)

    def _feed(self, event: FlowInput) -> None:
        if self._closed:
            return
        self._last_at = event.at
        recorder = self._client.recorder
        if recorder is not None:
            self._record(flow_event(event, workflow=self.workflow, workflow_id=self.workflow_id))
        try:
            actions = self.run.receive(event)
        except Exception as exc:  # a bug in the run: stop this workflow, not the Client
            self._stop_broken(event, exc)
            return
        for action in actions:
            self._perform(action)

    def _stop_broken(self, event: FlowInput, exc: Exception) -> None:
        """The run raised on ``event``: stop here, cancel what rings, wake the waiters."""
        logger.exception(
            "workflow %s (%s): the run raised on %s; stopping it and cancelling its invites",
            self.workflow.name,
            self.workflow_id,
            type(event).__name__,
        )
        self._broken = exc
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for started in self._started:  # an invite still being sent is cancelled by _ring
            started.set()
        self._client._task_group().start_soon(self._wind_down)

    async def _wind_down(self) -> None:
        """Cancel every invite of a broken run that still rings, then wake the waiters."""
        async with anyio.create_task_group() as tg:
            for index, handle in enumerate(self._invites):
                if handle is not None and not handle.invite.is_finished:
                    tg.start_soon(self._cancel, index)
        self._done.set()

    def _perform(self, action: FlowAction) -> None:
        tg = self._client._task_group()
        if isinstance(action, StartInvite):
            tg.start_soon(self._ring, action.index)
        elif isinstance(action, CancelInvite):
            tg.start_soon(self._cancel, action.index)
        elif isinstance(action, RemoveParticipant):
            tg.start_soon(self._remove, action.index)
        elif isinstance(action, SetTimer):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = anyio.CancelScope()
            tg.start_soon(self._sleep_until, action.at, self._timer)
        elif isinstance(action, Done):
            if self._timer is not None:
                self._timer.cancel()
            if self._client.recorder is not None:
                self._record(flow_result_event(action.result, workflow_id=self.workflow_id))
            logger.info(
                "workflow %s (%s): %s, answered %s",
                self.workflow.name,
                self.workflow_id,
                action.result.outcome,
                action.result.answered,
            )
            self._done.set()

    def _reached(self, index: int, outcome: Outcome) -> None:
        self._feed(InviteReached(index=index, outcome=outcome, at=self._now()))

    async def _ring(self, index: int) -> None:
        call_id, participant = self._targets[index]
        try:
            handle = await self._client.invite(call_id, [participant], timeout=self._timeout)
        except CallflowError as exc:
            logger.warning("workflow %s: invite %d not sent: %s", self.workflow_id, index, exc)
            self._started[index].set()
            self._reached(index, Outcome.failed)
            return
        self._invites[index] = handle
        self._started[index].set()
        if self._broken is not None:  # the run broke while this invite was being sent
            await self._cancel(index)
            return
        self._client._on_late(handle.invite_id, self._late(index))
        try:
            await handle.wait()
        except CallflowError:  # InviteFailed, or the Client closed
            if not handle.invite.is_finished:
                return
        failure = handle.failure
        reason = None if failure is None else failure.reason
        for outcome in outcomes_of(handle.history, handle.state, reason):
            self._reached(index, outcome)

    def _late(self, index: int) -> Callable[[Delivery], None]:
        def heard(delivery: Delivery) -> None:
            note = delivery.notification
            if note.kind is NotificationKind.operation and note.status == "completed":
                # The service says they joined after their invite ended (a failed cancel).
                self._reached(index, Outcome.completed)

        return heard

    async def _cancel(self, index: int) -> None:
        await self._started[index].wait()
        handle = self._invites[index]
        if handle is not None:
            try:
                await handle.cancel()
            except CallflowError as exc:  # the Client closed, or the invite failed first
                logger.info("workflow %s: cancel of %d: %s", self.workflow_id, index, exc)

    async def _remove(self, index: int) -> None:
        await self._started[index].wait()
        handle = self._invites[index]
        if handle is None:
            return
        try:
            await handle.remove()
        except CallflowError as exc:
            logger.warning(
                "workflow %s: participant %d joined after the winner and could not be removed: %s",
                self.workflow_id,
                index,
                exc,
            )
            self._reached(index, Outcome.remove_failed)
        else:
            self._reached(index, Outcome.removed)

    async def _sleep_until(self, at: float, scope: anyio.CancelScope) -> None:
        with scope:
            clock = self._client.clock
            await clock.sleep(max(0.0, at - clock.now()))
            # A loop may wake a hair early; the run ignores a timer before its deadline.
            self._feed(TimerFired(at=max(at, self._now())))

    def _record(self, event: Mapping[str, Any]) -> None:
        recorder = self._client.recorder
        assert recorder is not None
        try:
            recorder.record(event)
        except Exception:
            logger.exception("recorder %r raised; event %s not recorded", recorder, event["type"])

    def __repr__(self) -> str:
        return (
            f"<WorkflowHandle {self.workflow.name} {self.workflow_id} state={self.run.state}"
            f" answered={self.run.answered}>"
        )


async def start_workflow(
    client: Client,
    call_id: str,
    participants: Sequence[ParticipantSpec],
    workflow: Workflow,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a deadline, not a cancel scope
) -> WorkflowHandle:
    """Check the participants, start the workflow, and return its handle.

    Raises:
        WorkflowError: the number of participants is not the workflow's.
        InviteError: a participant is not a valid invitee; nothing was sent.
        CallflowError: the Client is not open.

    """
    client._task_group()
    if len(participants) != workflow.participants:
        raise WorkflowError(
            f"workflow {workflow.name} invites {workflow.participants} participants, "
            f"but {len(participants)} were given"
        )
    targets: list[tuple[str, InvitationParticipantInfo | Mapping[str, Any]]] = []
    for p in participants:
        target = (p.call_id, p.participant) if isinstance(p, InviteInto) else (call_id, p)
        Invite(*target[:1], [target[1]])  # refuses a bad invitee before anything is sent
        targets.append(target)
    handle = WorkflowHandle(
        client, call_id, targets, workflow, timeout=timeout, workflow_id=new_id()
    )
    await handle._begin()
    return handle
