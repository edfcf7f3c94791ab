"""One run of a workflow, sans-I/O: inputs with their time in, actions out; and its traces.

Theory of operation
-------------------
A :class:`WorkflowRun` follows one :class:`~callflow._flows.Workflow` declaration (see
:mod:`callflow._flows` for what entering a state does, the fates of invites, and who wins).
Inputs go in with their time (:class:`FlowStarted`, :class:`InviteReached`,
:class:`TimerFired`, :class:`CancelRequested`); actions come out (:class:`StartInvite`,
:class:`CancelInvite`, :class:`RemoveParticipant`, :class:`SetTimer`, :class:`Done`). The
engine performs the actions and feeds back what happened. There is one timer at a time: a
:class:`TimerFired` at or after the current deadline fires it, an earlier one (stale, from
a state already left) is ignored.

Every input is recorded as a :class:`FlowStep` in :attr:`WorkflowRun.steps`, ignored ones
too, with the reason. A final state reports :class:`Done` once no invite is pending, or at
its deadline. After :class:`Done`, a participant who still joins is removed, so the result
stays true; other inputs change nothing.

Every input can be written as a trace event (:func:`flow_event`, types ``workflow_…``,
JSON-ready; the ``workflow_started`` event holds the declaration) and
:func:`replay_workflow` reproduces the run's path from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ._flows import (
    CONDITIONS,
    FATES,
    PENDING,
    Fate,
    FlowTrigger,
    Outcome,
    Workflow,
    WorkflowError,
)

__all__ = [
    "FlowStarted",
    "InviteReached",
    "TimerFired",
    "CancelRequested",
    "FlowInput",
    "StartInvite",
    "CancelInvite",
    "RemoveParticipant",
    "SetTimer",
    "Done",
    "FlowAction",
    "InviteRecord",
    "FlowResult",
    "FlowStep",
    "WorkflowRun",
    "flow_event",
    "flow_result_event",
    "flow_input",
    "replay_workflow",
]

# -- inputs and actions -------------------------------------------------------------------------


def _time(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise WorkflowError(f"{attribute.name} must be a time in seconds, not {value!r}")


@attrs.frozen(kw_only=True)
class FlowStarted:
    """The run starts at ``at``."""

    at: float = attrs.field(validator=_time)


def _index(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkflowError(f"{attribute.name} must be a participant index, not {value!r}")


@attrs.frozen(kw_only=True)
class InviteReached:
    """The invite of participant ``index`` reached ``outcome`` at ``at``."""

    index: int = attrs.field(validator=_index)
    outcome: Outcome = attrs.field(converter=Outcome)
    at: float = attrs.field(validator=_time)


@attrs.frozen(kw_only=True)
class TimerFired:
    """A timer the run set went off at ``at``."""

    at: float = attrs.field(validator=_time)


@attrs.frozen(kw_only=True)
class CancelRequested:
    """The bot asked, at ``at``, to stop the whole workflow."""

    at: float = attrs.field(validator=_time)


FlowInput = FlowStarted | InviteReached | TimerFired | CancelRequested


@attrs.frozen
class StartInvite:
    """Invite participant ``index`` (one invite POST)."""

    index: int


@attrs.frozen
class CancelInvite:
    """Cancel the invite of participant ``index`` (it still rings)."""

    index: int


@attrs.frozen
class RemoveParticipant:
    """Remove participant ``index`` from the call: they joined after someone else won."""

    index: int


@attrs.frozen
class SetTimer:
    """Feed :class:`TimerFired` at ``at`` (replaces any earlier timer of the run)."""

    at: float


@attrs.frozen(kw_only=True)
class InviteRecord:
    """What happened to one participant's invite.

    Attributes:
        index: the participant's index.
        fate: where the invite ended (``ringing``, ``cancelling`` or ``removing`` only
            when the final state's deadline passed first).
        started_at: when it was started (None if never).
        ended_at: when its last outcome came (None if none did).

    """

    index: int
    fate: Fate
    started_at: float | None
    ended_at: float | None


@attrs.frozen(kw_only=True)
class FlowResult:
    """How a workflow ended.

    Attributes:
        workflow: the workflow's name.
        outcome: its final state (``answered``, ``nobody_answered``, ``cancelled``).
        answered: the index of the participant who joined, or None.
        invites: what happened to each participant's invite, by index.
        removed: participants who joined after the winner, or just as their cancel
            came, and were removed again (their record's fate says whether that worked).
        late_answers: participants who answered after their cancel had failed.
        at: when it ended.

    """

    workflow: str
    outcome: str
    answered: int | None
    invites: tuple[InviteRecord, ...]
    removed: tuple[int, ...]
    late_answers: tuple[int, ...]
    at: float

    @property
    def also_joined(self) -> tuple[int, ...]:
        """Participants other than the winner still in the call (a removal failed)."""
        return tuple(
            r.index for r in self.invites if r.fate is Fate.answered and r.index != self.answered
        )

    @property
    def unsettled(self) -> tuple[int, ...]:
        """Participants still pending when the final state's deadline passed."""
        return tuple(r.index for r in self.invites if r.fate in PENDING)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (for a trace's ``workflow_result`` event)."""
        return {
            "workflow": self.workflow,
            "outcome": self.outcome,
            "answered": self.answered,
            "invites": [
                {
                    "index": r.index,
                    "fate": r.fate.value,
                    "started_at": r.started_at,
                    "ended_at": r.ended_at,
                }
                for r in self.invites
            ],
            "removed": list(self.removed),
            "late_answers": list(self.late_answers),
            "at": self.at,
        }


@attrs.frozen
class Done:
    """The workflow has ended; ``result`` says how."""

    result: FlowResult


FlowAction = StartInvite | CancelInvite | RemoveParticipant | SetTimer | Done


@attrs.frozen(kw_only=True)
class FlowStep:
    """One input the run took, and what it did.

    Attributes:
        at: the input's time.
        input: the input.
        source: the state before.
        dest: the state after.
        actions: what the run asked for.
        ignored: True when the input changed nothing.
        note: why it was ignored, or what it meant.

    """

    at: float
    input: FlowInput
    source: str
    dest: str
    actions: tuple[FlowAction, ...]
    ignored: bool = False
    note: str = ""


# -- the runtime --------------------------------------------------------------------------------


class WorkflowRun:
    """One run of a :class:`Workflow`: feed it inputs, perform the actions it returns.

    Args:
        workflow: the declaration.

    """

    __slots__ = (
        "_last",
        "answered",
        "deadline",
        "ended_at",
        "fates",
        "late_answers",
        "removed",
        "result",
        "started_at",
        "state",
        "steps",
        "workflow",
    )

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.state: str | None = None
        self.fates: list[Fate] = [Fate.not_invited] * workflow.participants
        self.started_at: list[float | None] = [None] * workflow.participants
        self.ended_at: list[float | None] = [None] * workflow.participants
        self.deadline: float | None = None
        self.answered: int | None = None
        self.removed: list[int] = []
        self.late_answers: list[int] = []
        self.result: FlowResult | None = None
        self.steps: list[FlowStep] = []
        self._last: float | None = None

    @property
    def done(self) -> bool:
        """True once :class:`Done` has been returned."""
        return self.result is not None

    def receive(self, event: FlowInput) -> tuple[FlowAction, ...]:
        """Take one input; return the actions to perform, in order.

        Raises:
            WorkflowError: an input before :class:`FlowStarted` (or a second one), a time
                earlier than the previous input's, or an unknown participant index.

        """
        if self._last is not None and event.at < self._last:
            raise WorkflowError(f"input at {event.at} is earlier than the last one ({self._last})")
        if isinstance(event, FlowStarted) != (self.state is None):
            raise WorkflowError(
                "a run takes FlowStarted first and only once"
                if self.state is None
                else "this run has already started"
            )
        if isinstance(event, InviteReached) and not 0 <= event.index < self.workflow.participants:
            raise WorkflowError(
                f"no participant {event.index}: {self.workflow.name} has "
                f"{self.workflow.participants}"
            )
        self._last = event.at
        source = self.state or self.workflow.initial
        actions: list[FlowAction] = []
        note = self._take(event, actions)
        ignored = note.startswith("ignored")
        step = FlowStep(
            at=event.at,
            input=event,
            source=source,
            dest=self.state or source,
            actions=tuple(actions),
            ignored=ignored and not actions,
            note=note,
        )
        self.steps.append(step)
        return step.actions

    def _take(self, event: FlowInput, actions: list[FlowAction]) -> str:
        at = event.at
        if isinstance(event, FlowStarted):
            self._enter(self.workflow.initial, at, actions)
            return "started"
        if isinstance(event, TimerFired):
            if self.done or self.deadline is None or at < self.deadline:
                return "ignored: no deadline due"
            if self.workflow.state(self._now).final:
                self._finish(at, actions)
                return "final state's deadline passed"
            return self._fire(FlowTrigger.deadline, None, at, actions)
        if isinstance(event, CancelRequested):
            if self.done:
                return "ignored: the workflow has ended"
            return self._fire(FlowTrigger.cancel, None, at, actions)
        return self._outcome(event, actions)

    @property
    def _now(self) -> str:
        assert self.state is not None
        return self.state

    def _outcome(self, event: InviteReached, actions: list[FlowAction]) -> str:
        i, outcome, at = event.index, event.outcome, event.at
        before = self.fates[i]
        fate = FATES.get((before, outcome))
        if fate is None:
            return f"ignored: {outcome} cannot follow {before} for participant {i}"
        self.fates[i] = fate
        self.ended_at[i] = at
        if self.done:
            if fate is Fate.answered:
                # Joined after the result was reported: remove them, so it stays true.
                self.fates[i] = Fate.removing
                actions.append(RemoveParticipant(i))
                return "joined after the end: removed"
            return f"after the end: participant {i} {fate}"
        if before is Fate.cancel_failed and fate is Fate.answered:
            self.late_answers.append(i)
        if fate is Fate.removed and before is Fate.cancelled:
            # Joined as the cancel came; the cancel's DELETE removed them: nothing moves.
            self.removed.append(i)
            self._settle(at, actions)
            return f"participant {i} joined as it was cancelled: removed"
        note = self._fire(FlowTrigger(outcome.value), i, at, actions)
        if note.startswith("ignored"):
            note = f"participant {i} {fate}"
        self._settle(at, actions)
        return note

    def _fire(
        self, trigger: FlowTrigger, index: int | None, at: float, actions: list[FlowAction]
    ) -> str:
        for t in self.workflow.table.get((self._now, trigger), ()):
            if t.invite is not None and t.invite != index:
                continue
            if t.condition is not None and not CONDITIONS[t.condition](self.fates):
                continue
            if t.effect == "win" and index is not None:
                self.answered = index
            elif t.effect == "remove" and index is not None:
                self.fates[index] = Fate.removing
                self.removed.append(index)
                actions.append(RemoveParticipant(index))
            if t.dest != self._now:
                self._enter(t.dest, at, actions)
            return t.label
        return f"ignored: no transition on {trigger} from {self._now}"

    def _enter(self, name: str, at: float, actions: list[FlowAction]) -> None:
        state = self.workflow.state(name)
        self.state = name
        for i, fate in enumerate(self.fates):
            if fate is Fate.ringing and i not in state.rings:
                self.fates[i] = Fate.cancelling
                actions.append(CancelInvite(i))
        for i in state.rings:
            if self.fates[i] is Fate.not_invited:
                self.fates[i] = Fate.ringing
                self.started_at[i] = at
                actions.append(StartInvite(i))
        self.deadline = at + state.deadline
        actions.append(SetTimer(self.deadline))
        self._settle(at, actions)

    def _settle(self, at: float, actions: list[FlowAction]) -> None:
        if self.done or not self.workflow.state(self._now).final:
            return
        if not any(f in PENDING for f in self.fates):
            self._finish(at, actions)

    def _finish(self, at: float, actions: list[FlowAction]) -> None:
        self.result = FlowResult(
            workflow=self.workflow.name,
            outcome=self._now,
            answered=self.answered,
            invites=tuple(
                InviteRecord(index=i, fate=f, started_at=s, ended_at=e)
                for i, (f, s, e) in enumerate(
                    zip(self.fates, self.started_at, self.ended_at, strict=True)
                )
            ),
            removed=tuple(self.removed),
            late_answers=tuple(self.late_answers),
            at=at,
        )
        self.deadline = None
        actions.append(Done(self.result))


# -- traces -------------------------------------------------------------------------------------

_TYPES: Final = {
    FlowStarted: "workflow_started",
    InviteReached: "workflow_invite",
    TimerFired: "workflow_timer",
    CancelRequested: "workflow_cancel",
}


_INPUT_TYPES: Final = frozenset(_TYPES.values())


def flow_event(
    event: FlowInput, *, workflow: Workflow | None = None, workflow_id: str | None = None
) -> dict[str, Any]:
    """One input as a JSON-ready trace event (``type`` is ``workflow_…``).

    Args:
        event: the input.
        workflow: for :class:`FlowStarted`, the declaration, written into the event so
            that :func:`replay_workflow` needs nothing else.
        workflow_id: an id the engine gives the run, kept in every event.

    Returns:
        ``{"type": ..., "at": ..., ...}``.

    """
    out: dict[str, Any] = {"type": _TYPES[type(event)], "at": event.at}
    if workflow_id is not None:
        out["workflow_id"] = workflow_id
    if isinstance(event, InviteReached):
        out |= {"index": event.index, "outcome": event.outcome.value}
    if isinstance(event, FlowStarted) and workflow is not None:
        out["workflow"] = workflow.to_dict()
    return out


def flow_result_event(result: FlowResult, *, workflow_id: str | None = None) -> dict[str, Any]:
    """The run's result as a trace event, ``type`` ``workflow_result``, written last.

    :func:`replay_workflow` skips it (it is not an input); compare it with the replayed
    run's :attr:`WorkflowRun.result` to check a replay.
    """
    out: dict[str, Any] = {"type": "workflow_result", "at": result.at}
    if workflow_id is not None:
        out["workflow_id"] = workflow_id
    out["result"] = result.to_dict()
    return out


def flow_input(event: Mapping[str, Any]) -> FlowInput:
    """Read a trace event written by :func:`flow_event` back into its input.

    Raises:
        WorkflowError: not such an event (the message names what is wrong).

    """
    kind = event.get("type")
    try:
        if kind == "workflow_started":
            return FlowStarted(at=event["at"])
        if kind == "workflow_invite":
            return InviteReached(index=event["index"], outcome=event["outcome"], at=event["at"])
        if kind == "workflow_timer":
            return TimerFired(at=event["at"])
        if kind == "workflow_cancel":
            return CancelRequested(at=event["at"])
    except KeyError as exc:
        raise WorkflowError(f"{kind} event lacks {exc.args[0]!r}") from None
    except ValueError as exc:
        raise WorkflowError(f"{kind} event: {exc}") from None
    raise WorkflowError(f"not a workflow event: type {kind!r}")


def replay_workflow(
    events: Iterable[Mapping[str, Any]], *, workflow: Workflow | None = None
) -> WorkflowRun:
    """Feed recorded inputs to a fresh run and return it; its steps equal the recorded run's.

    Args:
        events: the run's ``workflow_…`` events, oldest first (other events, and its
            ``workflow_result``, are skipped).
        workflow: the declaration; by default the one the ``workflow_started`` event holds.

    Raises:
        WorkflowError: no declaration to replay with, or an event that is not valid.

    """
    run: WorkflowRun | None = None
    for n, event in enumerate(events):
        if event.get("type") not in _INPUT_TYPES:
            continue
        if run is None:
            if workflow is None and "workflow" not in event:
                raise WorkflowError(f"event {n}: the first event must be workflow_started")
            run = WorkflowRun(workflow or Workflow.from_dict(event["workflow"]))
        try:
            run.receive(flow_input(event))
        except WorkflowError as exc:
            raise WorkflowError(f"event {n}: {exc}") from None
    if run is None:
        raise WorkflowError("the trace holds no workflow events")
    return run
