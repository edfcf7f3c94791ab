"""Hunt, ring group and your own workflow through Client + FakeGraph, on asyncio and trio.

Each test drives the real engine: ``client.hunt`` / ``client.ring_group`` POST one invite
per participant to the fake service, cancel with the invite's DELETE, remove a second
joiner, and end by their deadlines on the virtual clock. The participants are the spec's
own (examples 2 and 4), without example 2's ``replacesCallId``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import callflow
from callflow import Fate, FlowResult, WorkflowHandle
from callflow._cli import main
from callflow._core._flow_run import InviteReached
from callflow._core._flows import hunt
from callflow._flow_engine import outcomes_of
from callflow.testing import (
    Answers,
    Declines,
    FakeGraph,
    NeverAnswers,
    Refuse,
    SlowAnswer,
    VirtualClock,
)
from flow_support import CALL_ID, IDS, PARTICIPANTS

pytestmark = pytest.mark.anyio


def script(fake: FakeGraph, *answers: Any) -> None:
    for identity_id, answer in zip(IDS, answers, strict=False):
        fake.script(identity_id, answer)


def answers(fake: FakeGraph, method: str) -> list[str]:
    """What the fake answered each request of ``method``, in order ("200", "204", ...)."""
    return [r.answer for r in fake.requests if r.method == method]


def state_and_reason(handle: WorkflowHandle, index: int) -> tuple[str, str | None]:
    """Participant ``index``'s invite: its state, and its failure reason if any."""
    invite = handle.invites[index]
    assert invite is not None
    return str(invite.state), None if invite.failure is None else str(invite.failure.reason)


def participant_state(fake: FakeGraph, handle: WorkflowHandle, index: int) -> str:
    """Where the fake says participant ``index`` is: ringing, joined, removed, ended..."""
    invite = handle.invites[index]
    assert invite is not None
    (participant_id,) = invite.invite.participant_ids
    assert participant_id is not None
    return fake.participant_state(CALL_ID, participant_id)


def fates(result: FlowResult) -> list[str]:
    return [str(r.fate) for r in result.invites]


@pytest.fixture
async def recorded(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> AsyncIterator[tuple[callflow.Client, callflow.MemoryRecorder]]:
    recorder = callflow.MemoryRecorder()
    async with (
        fake_graph.http_client() as http,
        callflow.Client(
            http, clock=virtual_clock, retry=callflow.RetryPolicy(jitter=False), recorder=recorder
        ) as client,
    ):
        fake_graph.deliver_to(client)
        yield client, recorder
        fake_graph.deliver_to(None)


# -- hunt -----------------------------------------------------------------------------------


async def test_hunt_the_first_to_answer_joins_and_nobody_else_is_rung(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=4.0))

    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS, ring_for=30.0)
    result = await handle.wait()

    assert (0, "answered", 4.0) == (result.answered, result.outcome, result.at)
    assert (["200"], []) == (answers(fake_graph, "POST"), answers(fake_graph, "DELETE"))
    assert ["answered", "not_invited", "not_invited"] == fates(result)
    assert ("completed", None) == state_and_reason(handle, 0)
    assert (None, None) == handle.invites[1:]


async def test_hunt_the_on_call_answering_at_45_s_is_cancelled_at_30_s_so_only_the_backup_joins(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=45.0), Answers(after=10.0))

    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS, ring_for=30.0)
    result = await handle.wait()

    assert (1, 40.0) == (result.answered, result.at)
    assert ["cancelled", "answered", "not_invited"] == fates(result)
    assert (["200", "200"], ["204"]) == (answers(fake_graph, "POST"), answers(fake_graph, "DELETE"))
    assert ("cancelled", "cancelled") == state_and_reason(handle, 0)
    assert "removed" == participant_state(fake_graph, handle, 0)


async def test_hunt_a_decline_moves_on_at_once(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Declines(after=3.0), Answers(after=5.0))

    result = await (await callflow_client.hunt(CALL_ID, PARTICIPANTS)).wait()

    assert (1, 8.0) == (result.answered, result.at)
    assert ["failed", "answered", "not_invited"] == fates(result)
    assert [] == answers(fake_graph, "DELETE")


async def test_hunt_a_late_answer_after_a_failed_cancel_is_reported_and_the_next_cancelled(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=45.0), NeverAnswers())
    fake_graph.fault_deletes(Refuse(403, "Forbidden", "Not allowed."))

    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS[:2], ring_for=30.0)
    result = await handle.wait()

    # The DELETE at 30 s was refused, so the on-call kept ringing and answered at 45 s:
    # the workflow says so, and cancels the backup it had moved on to.
    assert (0, (0,), 45.0) == (result.answered, result.late_answers, result.at)
    assert ["answered", "cancelled"] == fates(result)
    assert ["403", "204"] == answers(fake_graph, "DELETE")
    assert ("failed", "cancel_failed") == state_and_reason(handle, 0)


async def test_hunt_an_invite_the_service_refuses_moves_on_at_once(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=3.0), Answers(after=3.0))
    fake_graph.fault(Refuse(403, "Forbidden", "Not allowed."))  # the first POST
    fake_graph.assert_all_used = False  # participant 0's answer is never used

    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS[:2])
    result = await handle.wait()

    assert (1, 3.0) == (result.answered, result.at)
    assert ["403", "200"] == answers(fake_graph, "POST")
    assert ("failed", "http_error") == state_and_reason(handle, 0)


async def test_hunt_cancelled_as_a_whole_cancels_what_rings_and_rings_nobody_else(
    callflow_client: callflow.Client, fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    script(fake_graph, NeverAnswers())
    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS)
    await virtual_clock.sleep(5.0)

    result = await handle.cancel()

    assert ("cancelled", None, 5.0) == (result.outcome, result.answered, result.at)
    assert (["200"], ["204"]) == (answers(fake_graph, "POST"), answers(fake_graph, "DELETE"))
    assert result == await handle.cancel()  # idempotent


async def test_hunt_nobody_answers(callflow_client: callflow.Client, fake_graph: FakeGraph) -> None:
    script(fake_graph, NeverAnswers(), Declines(after=2.0))

    result = await (await callflow_client.hunt(CALL_ID, PARTICIPANTS[:2], ring_for=20.0)).wait()

    assert ("nobody_answered", None, 22.0) == (result.outcome, result.answered, result.at)
    assert ["cancelled", "failed"] == fates(result)
    assert ["204"] == answers(fake_graph, "DELETE")


async def test_a_cancel_after_the_answer_changes_nothing(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=1.0))
    handle = await callflow_client.hunt(CALL_ID, PARTICIPANTS)
    answered = await handle.wait()

    assert answered == await handle.cancel()
    assert [] == answers(fake_graph, "DELETE")


# -- ring group -----------------------------------------------------------------------------


async def test_ring_group_the_first_to_answer_wins_and_the_others_are_cancelled_at_once(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=9.0), Answers(after=4.0), NeverAnswers())

    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS, ring_for=30.0)
    result = await handle.wait()

    assert (1, 4.0) == (result.answered, result.at)
    assert ["cancelled", "answered", "cancelled"] == fates(result)
    assert (["200"] * 3, ["204", "204"]) == (
        answers(fake_graph, "POST"),
        answers(fake_graph, "DELETE"),
    )
    assert all(h is not None for h in handle.invites)
    assert 1 == sum(s.label == "operation" for s in fake_graph.sent)  # nobody else joined


async def test_ring_group_two_answering_in_the_same_instant_the_later_is_removed(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=5.0), Answers(after=5.0), NeverAnswers())

    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS)
    result = await handle.wait()
    await fake_graph.drain()

    # Both joined at 5 s; whichever the Client heard first won, the other was removed.
    assert result.answered in (0, 1)
    later = 1 - result.answered
    assert ((later,), ()) == (result.removed, result.also_joined)  # the result says who
    assert Fate.removed is handle.run.fates[later]
    assert ["204", "204"] == answers(fake_graph, "DELETE")  # the later one, and participant 2
    assert ["joined", "removed"] == [
        participant_state(fake_graph, handle, i) for i in (result.answered, later)
    ]


async def test_ring_group_a_second_joiner_whose_removal_fails_is_named_as_also_joined(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, Answers(after=5.0), Answers(after=5.0))
    fake_graph.fault_deletes(Refuse(403, "Forbidden", "Not allowed.", times=5))

    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS[:2])
    result = await handle.wait()

    assert result.answered in (0, 1)
    later = 1 - result.answered
    assert ((later,), (later,)) == (result.removed, result.also_joined)
    assert "joined" == participant_state(fake_graph, handle, later)  # the truth, told
    assert all(a == "403" for a in answers(fake_graph, "DELETE"))


async def test_ring_group_nobody_answers_at_ring_for(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, NeverAnswers(), NeverAnswers(), Declines(after=1.0))

    result = await (await callflow_client.ring_group(CALL_ID, PARTICIPANTS, 20.0)).wait()

    assert ("nobody_answered", None, 20.0) == (result.outcome, result.answered, result.at)
    assert ["cancelled", "cancelled", "failed"] == fates(result)
    assert ["204", "204"] == answers(fake_graph, "DELETE")


async def test_ring_group_cancelled_as_a_whole_cancels_every_invite(
    callflow_client: callflow.Client, fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    script(fake_graph, NeverAnswers(), NeverAnswers(), NeverAnswers())
    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS)
    await virtual_clock.sleep(3.0)

    result = await handle.cancel()

    assert ("cancelled", ["cancelled"] * 3) == (result.outcome, fates(result))
    assert ["204"] * 3 == answers(fake_graph, "DELETE")


# -- deadlines, bad input, the Client's end ---------------------------------------------------


async def test_a_workflow_whose_cancel_hangs_ends_at_its_final_deadline_saying_so(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, NeverAnswers(), Answers(after=2.0))
    fake_graph.fault_deletes(SlowAnswer(500.0))  # the DELETE of participant 0 hangs

    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS[:2], settle_for=10.0)
    result = await handle.wait()

    assert (1, 12.0, (0,)) == (result.answered, result.at, result.unsettled)
    assert Fate.cancelling is result.invites[0].fate


async def test_a_cancel_that_outlives_its_own_deadline_counts_as_failed_and_settles(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    script(fake_graph, NeverAnswers(), Answers(after=2.0))
    fake_graph.fault_deletes(SlowAnswer(500.0))

    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS[:2], settle_for=60.0)
    result = await handle.wait()

    # The invite's own cancelling deadline gives up on the DELETE: "may still ring".
    assert (1, ()) == (result.answered, result.unsettled)
    assert Fate.cancel_failed is result.invites[0].fate
    assert ("failed", "cancel_failed") == state_and_reason(handle, 0)
    assert result.at < 62.0


async def test_the_wrong_number_of_participants_is_refused_before_anything_is_sent(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    workflow = hunt(2)

    with pytest.raises(callflow.WorkflowError, match="invites 2 participants, but 3"):
        await callflow_client.run_workflow(CALL_ID, PARTICIPANTS, workflow)
    assert [] == fake_graph.requests


async def test_a_bad_participant_is_refused_before_anything_is_sent(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    with pytest.raises(callflow.InviteError):
        await callflow_client.ring_group(CALL_ID, [PARTICIPANTS[0], {"identity": {}}])
    assert [] == fake_graph.requests


async def test_no_participants_is_refused(callflow_client: callflow.Client) -> None:
    with pytest.raises(callflow.WorkflowError, match="at least one participant"):
        await callflow_client.hunt(CALL_ID, [])


async def test_a_workflow_left_running_when_the_client_closes_raises_on_wait(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    script(fake_graph, NeverAnswers())
    async with (
        fake_graph.http_client() as http,
        callflow.Client(http, clock=virtual_clock) as client,
    ):
        fake_graph.deliver_to(client)
        handle: WorkflowHandle = await client.hunt(CALL_ID, PARTICIPANTS[:1])
    fake_graph.assert_all_used = False

    with pytest.raises(callflow.CallflowError, match="closed before workflow hunt"):
        await handle.wait()


async def test_a_run_that_raises_stops_its_workflow_cancels_its_ringing_and_spares_the_client(
    callflow_client: callflow.Client,
    fake_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A bug in the run (faked here: it raises on the first invite's outcome) costs that
    # workflow only: it stops, the participant still ringing is cancelled, wait() says why,
    # and the Client goes on inviting.
    script(fake_graph, Declines(after=2.0), NeverAnswers(), Answers(after=1.0))
    receive = callflow.WorkflowRun.receive

    def broken(self: callflow.WorkflowRun, event: Any) -> Any:
        if not isinstance(event, InviteReached):
            return receive(self, event)
        raise RuntimeError("a bug in the run")

    monkeypatch.setattr(callflow.WorkflowRun, "receive", broken)
    handle = await callflow_client.ring_group(CALL_ID, PARTICIPANTS[:2])

    stopped = "stopped: its run raised RuntimeError"
    with pytest.raises(callflow.CallflowError, match=stopped) as info:
        await handle.wait()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "the run raised on InviteReached" in caplog.text
    invite = handle.invites[1]
    assert invite is not None
    assert ("cancelled", "cancelled") == state_and_reason(handle, 1)
    assert ["204"] == answers(fake_graph, "DELETE")

    monkeypatch.setattr(callflow.WorkflowRun, "receive", receive)
    third = await callflow_client.invite(CALL_ID, [PARTICIPANTS[2]])
    assert callflow.InviteState.completed == await third.wait()


# -- record and replay ------------------------------------------------------------------------


async def test_a_recorded_workflow_replays_to_the_same_path(
    recorded: tuple[callflow.Client, callflow.MemoryRecorder],
    fake_graph: FakeGraph,
    tmp_path: Path,
) -> None:
    client, recorder = recorded
    script(fake_graph, Answers(after=45.0), Answers(after=10.0))
    handle = await client.hunt(CALL_ID, PARTICIPANTS, ring_for=30.0)
    result = await handle.wait()

    events = [e for e in recorder.events if e.get("workflow_id") == handle.workflow_id]
    replayed = callflow.replay_workflow(json.loads(json.dumps(events)))

    assert handle.run.steps == replayed.steps
    assert result == replayed.result
    assert {"type": "workflow_result", "result": result.to_dict()} == {
        k: events[-1][k] for k in ("type", "result")
    }


async def test_callflow_replay_reproduces_a_recorded_workflow_s_path(
    recorded: tuple[callflow.Client, callflow.MemoryRecorder],
    fake_graph: FakeGraph,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, recorder = recorded
    script(fake_graph, Declines(after=3.0), Answers(after=5.0))
    await (await client.ring_group(CALL_ID, PARTICIPANTS[:2])).wait()
    await fake_graph.drain()
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(line + "\n" for line in recorder.lines()), encoding="utf-8")

    assert 0 == main(["replay", str(trace)])

    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("workflow ")]
    assert (
        "workflow ring_group  ringing → answered (+5.000s)  [answered: 1]  "
        "✓ matches the recorded result"
    ) == line


def test_callflow_demo_runs_a_hunt_and_a_ring_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["demo"])

    lines = capsys.readouterr().out.splitlines()
    assert (
        "hunt       ringing_0 → ringing_1 (+30.000s) → answered (+40.000s)  [answered: 1]  ✓  "
        "(2 POSTs, 1 DELETEs)"
    ) in lines
    assert (
        "ring group ringing → answered (+4.000s)  [answered: 1]  ✓  (3 POSTs, 2 DELETEs)"
    ) in lines
    assert "2 workflows: 2 as expected" in lines


# -- how an invite's end reads as a workflow outcome -----------------------------------------

_S, _R, _T = callflow.InviteState, callflow.FailureReason, callflow.Trigger
_JOINED_WHILE_CANCELLING = callflow.Step(
    _T.operation_completed, _S.cancelling, _S.cancelling, "notification", 31.0
)


@pytest.mark.parametrize(
    ("state", "reason", "history", "expected"),
    [
        (_S.completed, None, (), ["completed"]),
        (_S.failed, _R.operation_failed, (), ["failed"]),  # declined
        (_S.failed, _R.http_error, (), ["failed"]),
        (_S.failed, _R.call_ended, (), ["failed"]),
        (_S.failed, _R.outcome_unknown, (), ["timed_out"]),
        (_S.failed, _R.cancel_failed, (), ["cancel_failed"]),
        (_S.cancelled, _R.cancelled, (), ["cancelled"]),
        (_S.cancelled, _R.timeout, (), ["timed_out"]),  # its own deadline cancelled it
        (_S.cancelled, _R.cancelled, (_JOINED_WHILE_CANCELLING,), ["cancelled", "completed"]),
        (_S.cancelled, _R.timeout, (_JOINED_WHILE_CANCELLING,), ["cancelled", "completed"]),
        (_S.failed, _R.cancel_failed, (_JOINED_WHILE_CANCELLING,), ["cancel_failed", "completed"]),
    ],
)
def test_an_invite_s_end_reads_as_these_workflow_outcomes(
    state: callflow.InviteState,
    reason: callflow.FailureReason | None,
    history: tuple[callflow.Step, ...],
    expected: list[str],
) -> None:
    assert expected == [str(o) for o in outcomes_of(history, state, reason)]
