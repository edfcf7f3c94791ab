"""Workflows as runnable scenarios: a hunt and a ring group against the fake service.

Theory of operation
-------------------
A :class:`WorkflowScenario` names a built-in workflow (``hunt`` or ``ring_group``), how
each participant answers (one scripted answer per participant, in order) and who should
end up joined. :func:`run_workflow_scenario` plays it with ``client.hunt`` or
``client.ring_group`` against a :class:`~callflow.testing.FakeGraph` on a fresh
:class:`~callflow.testing.VirtualClock`, recording every input, and returns the result,
the trace and what the fake saw. ``callflow demo`` runs :data:`WORKFLOW_SCENARIOS`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import anyio
import attrs

from .._client import Client
from .._core._flow_run import FlowResult, WorkflowRun
from .._core._retry import RetryPolicy
from .._trace import MemoryRecorder
from ._clock import VirtualClock
from ._fake import FakeGraph, Received
from ._script import Answer, Answers, NeverAnswers

__all__ = [
    "WorkflowScenario",
    "WorkflowScenarioResult",
    "WORKFLOW_SCENARIOS",
    "run_workflow_scenario",
]

_CALL: Final = "7531d31f-d10d-44de-802f-c569dbca451c"
_PEOPLE: Final = (
    "7e1b4346-85a6-4bdd-abe3-d11c5d420efe",
    "1e126418-44a0-4a94-a6f8-0efe1ad71acb",
    "278405a3-f568-4b3e-b684-009193463064",
)


def _person(user_id: str) -> dict[str, Any]:
    return {"identity": {"user": {"id": user_id, "displayName": "string"}}}


@attrs.frozen(kw_only=True)
class WorkflowScenario:
    """One workflow run against the fake service.

    Attributes:
        name: how the demo names it.
        slug: its trace's file name (without ``.jsonl``).
        workflow: ``hunt`` or ``ring_group``.
        answers: how participant 0, 1, ... answer (one scripted answer each).
        ring_for: seconds each participant (hunt) or the group rings.
        expect_answered: who should end up joined (None: nobody).
        expect_deletes: how many DELETEs the fake should get.
        note: one sentence on what it shows.

    """

    name: str
    slug: str
    workflow: Literal["hunt", "ring_group"]
    answers: tuple[Answer, ...]
    ring_for: float = 30.0
    expect_answered: int | None
    expect_deletes: int
    note: str


#: The hunt and the ring group the demo plays.
WORKFLOW_SCENARIOS: Final[tuple[WorkflowScenario, ...]] = (
    WorkflowScenario(
        name="hunt",
        slug="workflow-hunt",
        workflow="hunt",
        answers=(Answers(after=45.0), Answers(after=10.0)),
        expect_answered=1,
        expect_deletes=1,
        note="the on-call would answer at 45 s: cancelled at 30 s; the backup answers 10 s later",
    ),
    WorkflowScenario(
        name="ring group",
        slug="workflow-ring-group",
        workflow="ring_group",
        answers=(Answers(after=9.0), Answers(after=4.0), NeverAnswers()),
        expect_answered=1,
        expect_deletes=2,
        note="all three ring at once; the second answers at 4 s, the other two are cancelled",
    ),
)


@attrs.frozen(kw_only=True)
class WorkflowScenarioResult:
    """What running a :class:`WorkflowScenario` gave.

    Attributes:
        scenario: the scenario.
        result: how the workflow ended.
        run: the sans-I/O run, with every step it took.
        events: the trace the Client recorded (JSON-ready events).
        requests: what the fake service got.

    """

    scenario: WorkflowScenario
    result: FlowResult
    run: WorkflowRun
    events: tuple[dict[str, Any], ...]
    requests: tuple[Received, ...]

    @property
    def deletes(self) -> int:
        """How many DELETEs the fake got."""
        return sum(r.method == "DELETE" for r in self.requests)

    @property
    def as_expected(self) -> bool:
        """True when the expected participant joined, with the expected DELETEs."""
        scenario = self.scenario
        return (self.result.answered, self.deletes) == (
            scenario.expect_answered,
            scenario.expect_deletes,
        )


async def run_workflow_scenario(scenario: WorkflowScenario) -> WorkflowScenarioResult:
    """Play one workflow scenario on a fresh virtual clock, until nothing more is sent.

    Returns:
        A :class:`WorkflowScenarioResult`.

    """
    clock = VirtualClock()
    recorder = MemoryRecorder()
    participants = [_person(p) for p in _PEOPLE]
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump, name="callflow virtual clock")
        async with FakeGraph(clock=clock) as fake, fake.http_client() as http:
            for user_id, answer in zip(_PEOPLE, scenario.answers, strict=False):
                fake.script(user_id, answer)
            async with Client(
                http, clock=clock, recorder=recorder, retry=RetryPolicy(jitter=False)
            ) as client:
                fake.deliver_to(client)
                start = client.hunt if scenario.workflow == "hunt" else client.ring_group
                handle = await start(_CALL, participants, scenario.ring_for)
                result = await handle.wait()
                await fake.drain()
        tg.cancel_scope.cancel()
    return WorkflowScenarioResult(
        scenario=scenario,
        result=result,
        run=handle.run,
        events=tuple(recorder.events),
        requests=tuple(fake.requests),
    )
