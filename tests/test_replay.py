"""Record invites against the fake service with faults; replaying the trace retraces them exactly.

A :class:`~callflow.MemoryRecorder` or :class:`~callflow.JsonlRecorder` attached to the
Client records every input of every invite; :func:`callflow._trace.replay_all` feeds them
to fresh invites. The replayed histories must equal, step for step (trigger, states,
cause, time, ignored), both the live invites' histories and the ``result`` events the
Client recorded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import callflow
from callflow import (
    Client,
    InviteFailed,
    JsonlRecorder,
    MemoryRecorder,
    Recorder,
    RetryPolicy,
    Step,
    TraceError,
)
from callflow._trace import read_trace, replay, replay_all
from callflow.testing import (
    SCENARIOS,
    SPEC_REQUESTS,
    Accepts,
    Declines,
    DelayNotifications,
    DropAfterTaking,
    DropBeforeSending,
    DropNotifications,
    DuplicateNotifications,
    FailAfterTaking,
    FakeGraph,
    Fault,
    NeverAnswers,
    NotifyBeforeAnswer,
    Refuse,
    ReorderNotifications,
    Scenario,
    SlowAnswer,
    Throttle,
    VirtualClock,
    run_scenario,
)

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
PSTN = {"identity": {"phone": {"id": "+12345678901"}}}
REPLACING: list[Any] = list(SPEC_REQUESTS[3]["participants"])


def _recorded(events: Sequence[dict[str, Any]]) -> dict[str, list[Step]]:
    """The history each invite's ``result`` event recorded."""
    return {
        e["client_context"]: [Step.from_dict(s) for s in e["history"]]
        for e in events
        if e["type"] == "result"
    }


def _replayed(events: list[dict[str, Any]]) -> dict[str, list[Step]]:
    return {invite.client_context: list(invite.history) for invite in replay_all(events)}


async def _record_faulty_session(clock: VirtualClock, recorder: Recorder) -> dict[str, list[Step]]:
    """Two invites with faults: a replacing one (429, duplicates, reordering) and a stalled one."""
    async with FakeGraph(clock=clock) as fake, fake.http_client() as http:
        client = Client(http, clock=clock, recorder=recorder, retry=RetryPolicy(jitter=False))
        async with client:
            fake.deliver_to(client)
            fake.fault(Throttle(retry_after=2), DuplicateNotifications(), ReorderNotifications())
            replacing = await client.invite(CALL_ID, REPLACING, client_context="replacing")
            await replacing.wait()
            fake.fault(DropNotifications(only="operation"))
            stalled = await client.invite(CALL_ID, [PSTN], client_context="stalled")
            with pytest.raises(InviteFailed):
                await stalled.wait()
            await fake.drain()
    # the stalled invite is cancelled at its deadline: its DELETE answers 204
    assert ["429", "200", "200", "204"] == [r.answer for r in fake.requests]
    return {h.client_context: list(h.history) for h in (replacing, stalled)}


async def test_a_trace_with_faults_replays_to_exactly_the_recorded_history(
    virtual_clock: VirtualClock,
) -> None:
    recorder = MemoryRecorder()

    live = await _record_faulty_session(virtual_clock, recorder)

    assert live == _recorded(recorder.events)
    assert live == _replayed(recorder.events)


async def test_the_recorded_session_holds_the_faults_it_replays(
    virtual_clock: VirtualClock,
) -> None:
    recorder = MemoryRecorder()

    live = await _record_faulty_session(virtual_clock, recorder)

    notes = [
        json.dumps(e["notification"])
        for e in recorder.of("replacing")
        if e["type"] == "notification"
    ]
    assert len(notes) > len(set(notes)), "a duplicated notification was recorded"
    assert [("stalled", "running")] == [
        (e["client_context"], e["state"]) for e in recorder.events if e["type"] == "timeout"
    ]
    failure = replay(recorder.of("stalled")).failure
    assert failure is not None
    assert callflow.FailureReason.timeout == failure.reason
    assert callflow.Trigger.original_gone == live["replacing"][1].trigger  # reordered: end first


async def test_a_jsonl_trace_replays_to_exactly_the_recorded_history(
    virtual_clock: VirtualClock, tmp_path: Path
) -> None:
    trace = tmp_path / "session.jsonl"
    recorder = JsonlRecorder(trace)
    try:
        live = await _record_faulty_session(virtual_clock, recorder)
    finally:
        recorder.close()

    events = read_trace(trace)

    assert live == _recorded(events)
    assert live == _replayed(events)


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param((Throttle(retry_after=1, times=2),), id="429 then 200"),
        pytest.param((Throttle(retry_after=1, times=5),), id="429 to the end"),
        pytest.param((Refuse(500),), id="500"),
        pytest.param((FailAfterTaking(503),), id="503 after taking"),
        pytest.param((FailAfterTaking(504), DropNotifications()), id="504 then silence"),
        pytest.param((DropBeforeSending(),), id="dropped before sending"),
        pytest.param((DropBeforeSending(times=5),), id="never sent"),
        pytest.param((DropAfterTaking(),), id="dropped after taking"),
        pytest.param((SlowAnswer(5.0),), id="slow answer"),
        pytest.param((NotifyBeforeAnswer(),), id="notified before the answer"),
        pytest.param((DelayNotifications(100.0),), id="delayed past the deadline"),
        pytest.param(
            (DuplicateNotifications(), ReorderNotifications()), id="duplicated, reordered"
        ),
    ],
)
async def test_each_fault_replays_to_exactly_the_recorded_history(
    faults: tuple[Fault, ...],
) -> None:
    result = await run_scenario(attrs.evolve(SCENARIOS[0], faults=faults))

    events = list(result.events)
    assert [result.invite.history] == [tuple(s) for s in _recorded(events).values()]
    assert result.invite.history == replay(events).history


async def test_an_invite_that_could_not_be_sent_records_why() -> None:
    result = await run_scenario(attrs.evolve(SCENARIOS[3], faults=(DropBeforeSending(times=5),)))

    assert ["invite", "send_failed", "result"] == [e["type"] for e in result.events]
    failure = replay(list(result.events)).failure
    assert failure is not None
    assert callflow.FailureReason.unreachable == failure.reason


async def test_a_trace_whose_inputs_were_changed_does_not_replay_to_its_result() -> None:
    result = await run_scenario(SCENARIOS[3])
    events = json.loads(json.dumps(list(result.events)))
    completion = next(e for e in events if e["type"] == "notification")
    completion["notification"]["resourceData"]["status"] = "failed"

    with pytest.raises(TraceError, match="took a different path than recorded"):
        replay(events)


# -- any mix of faults and answers -----------------------------------------------------------------

_FAULTS = st.sampled_from(
    [
        Throttle(retry_after=1),
        Throttle(retry_after=None, times=2),
        Refuse(500),
        FailAfterTaking(503),
        DropBeforeSending(),
        DropAfterTaking(),
        SlowAnswer(3.0),
        DropNotifications(),
        DropNotifications(only=("roster", "original_terminated", "participant_removed")),
        DuplicateNotifications(),
        ReorderNotifications(),
        DelayNotifications(100.0, only="operation"),
        NotifyBeforeAnswer(),
    ]
)
_ANSWERS = st.sampled_from([Accepts(), Accepts(after=0.0), Declines(), NeverAnswers()])


def _first_identity_id(scenario: Scenario) -> str:
    identity = scenario.request["participants"][0]["identity"]
    return str(next(v["id"] for v in identity.values() if isinstance(v, dict)))


@settings(max_examples=40, deadline=None)
@given(
    scenario=st.sampled_from(SCENARIOS[:5]),
    faults=st.lists(_FAULTS, max_size=4),
    answer=_ANSWERS,
)
async def test_any_mix_of_faults_replays_to_exactly_the_recorded_history(
    scenario: Scenario, faults: list[Fault], answer: Accepts | Declines | NeverAnswers
) -> None:
    played = attrs.evolve(
        scenario, faults=tuple(faults), scripts=((_first_identity_id(scenario), answer),)
    )

    result = await run_scenario(played)

    events = list(result.events)
    assert [list(result.invite.history)] == list(_recorded(events).values())
    assert result.invite.history == replay(events).history
