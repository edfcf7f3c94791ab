"""The workflow core driving FakeGraph over HTTP, on asyncio and trio, on a virtual clock.

The Client's own engine is tested in test_flow_engine.py; this test's small driver, over
raw HTTP, shows the sans-I/O core needs nothing else. It does what an engine must: it
performs each action the run asks for (an invite POST per StartInvite, a DELETE of the
participant per CancelInvite or RemoveParticipant, a timer per SetTimer) and feeds back
what happened (the operation's notification, the DELETE's answer, the timer). It shows
that the fake gives what a workflow needs: participant ids, a DELETE that stops the ring,
answers at chosen times, DELETE faults.

The participants are the spec's own (examples 2 and 4), without example 2's
``replacesCallId``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import httpx
import pytest

import callflow
from callflow import NotificationKind
from callflow._core._flow_run import (
    CancelInvite,
    CancelRequested,
    Done,
    FlowAction,
    FlowInput,
    FlowStarted,
    InviteReached,
    RemoveParticipant,
    SetTimer,
    StartInvite,
    TimerFired,
    WorkflowRun,
)
from callflow._core._flows import Fate, Outcome, Workflow, hunt, ring_group
from callflow.testing import (
    Answers,
    Declines,
    FakeGraph,
    NeverAnswers,
    Refuse,
    VirtualClock,
)
from flow_support import CALL_ID, IDS, PARTICIPANTS

pytestmark = pytest.mark.anyio


class Driver:
    """Performs a run's actions against the fake and feeds back what happened."""

    def __init__(self, run: WorkflowRun, clock: VirtualClock, http: httpx.AsyncClient) -> None:
        self.run, self.clock, self.http = run, clock, http
        self.contexts: dict[str, int] = {}
        self.participant_ids: dict[int, str] = {}
        self.finished = anyio.Event()
        self.tg: anyio.abc.TaskGroup | None = None

    async def feed(self, event: FlowInput) -> None:
        for action in self.run.receive(event):
            await self.perform(action)

    async def perform(self, action: FlowAction) -> None:
        assert self.tg is not None
        if isinstance(action, StartInvite):
            i = action.index
            context = f"flow-{i}"
            self.contexts[context] = i
            url = f"/communications/calls/{CALL_ID}/participants/invite"
            body = {"participants": [PARTICIPANTS[i]], "clientContext": context}
            response = await self.http.post(url, json=body)
            if response.status_code != 200:
                await self.feed(InviteReached(index=i, outcome=Outcome.failed, at=self.now))
                return
            self.participant_ids[i] = response.json()["participants"][0]["id"]
        elif isinstance(action, (CancelInvite, RemoveParticipant)):
            cancel = isinstance(action, CancelInvite)
            pid = self.participant_ids[action.index]
            response = await self.http.delete(f"/communications/calls/{CALL_ID}/participants/{pid}")
            worked = response.status_code in (204, 404)  # 404: already gone
            outcome = {
                (True, True): Outcome.cancelled,
                (True, False): Outcome.cancel_failed,
                (False, True): Outcome.removed,
                (False, False): Outcome.remove_failed,
            }[(cancel, worked)]
            await self.feed(InviteReached(index=action.index, outcome=outcome, at=self.now))
        elif isinstance(action, SetTimer):
            self.tg.start_soon(self._timer, action.at)
        elif isinstance(action, Done):
            self.finished.set()

    async def _timer(self, at: float) -> None:
        await self.clock.sleep(max(0.0, at - self.clock.now()))
        await self.feed(TimerFired(at=self.now))

    async def receive_body(self, body: dict[str, Any]) -> None:
        for note in callflow.parse_notifications(body):
            index = self.contexts.get(note.client_context or "")
            if note.kind is NotificationKind.operation and index is not None:
                done = note.status == "completed"
                outcome = Outcome.completed if done else Outcome.failed
                await self.feed(InviteReached(index=index, outcome=outcome, at=self.now))

    @property
    def now(self) -> float:
        return self.clock.now()


@pytest.fixture
async def clock() -> AsyncIterator[VirtualClock]:
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump)
        yield clock
        tg.cancel_scope.cancel()


async def _play(
    workflow: Workflow,
    clock: VirtualClock,
    answers: Sequence[Any],
    *,
    cancel_at: float | None = None,
    delete_faults: Sequence[Any] = (),
) -> tuple[WorkflowRun, FakeGraph]:
    run = WorkflowRun(workflow)
    async with FakeGraph(clock=clock) as fake, fake.http_client() as http:
        for identity_id, answer in zip(IDS, answers, strict=False):
            fake.script(identity_id, answer)
        fake.fault_deletes(*delete_faults)
        driver = Driver(run, clock, http)
        fake.deliver_to(driver.receive_body)
        async with anyio.create_task_group() as tg:
            driver.tg = tg
            await driver.feed(FlowStarted(at=clock.now()))
            if cancel_at is not None:
                await clock.sleep(cancel_at)
                await driver.feed(CancelRequested(at=clock.now()))
            await driver.finished.wait()
            await fake.drain()  # what the service still sends after the result
            tg.cancel_scope.cancel()
    return run, fake


def _calls(fake: FakeGraph, method: str) -> list[str]:
    return [r.answer for r in fake.requests if r.method == method]


async def test_hunt_the_on_call_answering_at_45_s_is_cancelled_at_30_s_so_only_the_backup_joins(
    clock: VirtualClock,
) -> None:
    run, fake = await _play(
        hunt(3, ring_for=30.0), clock, [Answers(after=45.0), Answers(after=10.0)]
    )

    assert run.result is not None
    assert (1, "answered") == (run.result.answered, run.result.outcome)
    assert (["200", "200"], ["204"]) == (_calls(fake, "POST"), _calls(fake, "DELETE"))
    (first, second) = fake.operations.values()
    assert "removed" == fake.participant_state(CALL_ID, str(first.participant_ids[0]))
    # The on-call's completion was never sent: the DELETE stopped the ring.
    assert [second.id] == [s.operation_id for s in fake.sent if s.label == "operation"]
    assert 40.0 == run.result.at


async def test_hunt_a_decline_moves_on_at_once(clock: VirtualClock) -> None:
    run, fake = await _play(hunt(3), clock, [Declines(after=3.0), NeverAnswers(), Answers()])

    assert run.result is not None
    assert 2 == run.result.answered
    assert ["failed", "cancelled", "answered"] == [str(r.fate) for r in run.result.invites]
    assert ["204"] == _calls(fake, "DELETE")  # participant 1, at its ring_for


async def test_hunt_a_late_answer_after_a_failed_cancel_wins_and_the_next_is_cancelled(
    clock: VirtualClock,
) -> None:
    run, fake = await _play(
        hunt(2, ring_for=30.0),
        clock,
        [Answers(after=45.0), NeverAnswers()],
        delete_faults=[Refuse(500)],
    )

    assert run.result is not None
    assert (0, (0,)) == (run.result.answered, run.result.late_answers)
    assert ["500", "204"] == _calls(fake, "DELETE")
    assert Fate.cancelled is run.result.invites[1].fate


async def test_hunt_cancelled_as_a_whole_cancels_what_rings(clock: VirtualClock) -> None:
    run, fake = await _play(hunt(3), clock, [NeverAnswers()], cancel_at=5.0)

    assert run.result is not None
    assert ("cancelled", None) == (run.result.outcome, run.result.answered)
    assert (["200"], ["204"]) == (_calls(fake, "POST"), _calls(fake, "DELETE"))


async def test_hunt_nobody_answers(clock: VirtualClock) -> None:
    run, fake = await _play(hunt(2, ring_for=20.0), clock, [NeverAnswers(), Declines()])

    assert run.result is not None
    assert ("nobody_answered", None) == (run.result.outcome, run.result.answered)
    assert ["204"] == _calls(fake, "DELETE")


async def test_ring_group_first_to_answer_wins_and_the_others_are_cancelled(
    clock: VirtualClock,
) -> None:
    run, fake = await _play(
        ring_group(3), clock, [Answers(after=9.0), Answers(after=4.0), NeverAnswers()]
    )

    assert run.result is not None
    assert 1 == run.result.answered
    assert (["200"] * 3, ["204", "204"]) == (_calls(fake, "POST"), _calls(fake, "DELETE"))
    assert ["cancelled", "answered", "cancelled"] == [str(r.fate) for r in run.result.invites]
    assert 1 == sum(s.label == "operation" for s in fake.sent)  # nobody else joined


async def test_ring_group_two_answering_in_the_same_instant_only_the_first_stays(
    clock: VirtualClock,
) -> None:
    run, fake = await _play(
        ring_group(3), clock, [Answers(after=5.0), Answers(after=5.0), NeverAnswers()]
    )

    assert run.result is not None
    assert 0 == run.result.answered
    # Notifications come one at a time: 0's completion cancels 1 before 1's arrives, and
    # that DELETE finds 1 joined and removes them (204). 1's completion comes after the
    # result and is read as what it is: 1 joined as it was cancelled, and was removed.
    assert ["204", "204"] == _calls(fake, "DELETE")
    second = list(fake.operations.values())[1]
    assert "removed" == fake.participant_state(CALL_ID, str(second.participant_ids[0]))
    assert Fate.cancelled is run.result.invites[1].fate
    assert Fate.removed is run.fates[1]
    assert "after the end: participant 1 removed" == run.steps[-1].note


async def test_ring_group_nobody_answers_at_ring_for(clock: VirtualClock) -> None:
    run, fake = await _play(
        ring_group(3, ring_for=20.0), clock, [NeverAnswers(), NeverAnswers(), Declines()]
    )

    assert run.result is not None
    assert ("nobody_answered", 20.0) == (run.result.outcome, run.result.at)
    assert ["204", "204"] == _calls(fake, "DELETE")
