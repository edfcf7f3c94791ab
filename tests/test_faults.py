"""Each fault the fake service can inject, and callflow's answer to it.

Every test runs a real :class:`callflow.Client` against :class:`~callflow.testing.FakeGraph`
through the pytest plugin's fixtures, on a virtual clock that starts at 0 (so the times
asserted are seconds since the invite).
"""

from __future__ import annotations

from typing import Any

import pytest

import callflow
from callflow import DeliveryOutcome, FailureReason, InviteState, Trigger
from callflow.testing import (
    SPEC_REQUESTS,
    DelayNotifications,
    DropAfterTaking,
    DropBeforeSending,
    DropNotifications,
    DuplicateNotifications,
    FailAfterTaking,
    FakeGraph,
    NeverAnswers,
    NotifyBeforeAnswer,
    Quirks,
    Refuse,
    ReorderNotifications,
    SlowAnswer,
    Throttle,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
PSTN = {"identity": {"phone": {"id": "+12345678901"}}}
REPLACING: list[Any] = list(SPEC_REQUESTS[3]["participants"])


def _path(handle: callflow.InviteHandle) -> list[tuple[Trigger, InviteState, float]]:
    """The steps that counted: trigger, state reached, when."""
    return [(s.trigger, s.dest, s.at) for s in handle.history if not s.ignored]


def _answers(fake: FakeGraph) -> list[str]:
    return [r.answer for r in fake.requests]


async def _failure(handle: callflow.InviteHandle) -> callflow.InviteFailed:
    with pytest.raises(callflow.InviteFailed) as failed:
        await handle.wait()
    return failed.value


# -- the answer to the POST ----------------------------------------------------------------------


async def test_a_throttled_post_is_sent_again_after_retry_after(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(Throttle(retry_after=3, times=2))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.completed == await handle.wait()
    assert ["429", "429", "200"] == _answers(fake_graph)
    assert [0.0, 3.0, 6.0] == [r.at for r in fake_graph.requests]
    assert [(Trigger.accepted, InviteState.running, 6.0)] == _path(handle)[:1]


async def test_a_429_without_retry_after_is_sent_again_after_the_backoff(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(Throttle(retry_after=None))

    await callflow_client.invite(CALL_ID, [PSTN])

    assert [0.0, callflow_client.retry.backoff] == [r.at for r in fake_graph.requests]


async def test_throttling_that_outlasts_the_retry_policy_fails_with_the_429(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(Throttle(retry_after=1, times=callflow_client.retry.max_attempts))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert (FailureReason.http_error, 429, "TooManyRequests") == (
        failed.failure.reason,
        failed.status_code,
        failed.error_code,
    )
    assert {} == fake_graph.operations


async def test_a_refused_post_fails_at_once_and_is_not_sent_again(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(Refuse(500))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert (FailureReason.http_error, 500, "InternalServerError") == (
        failed.failure.reason,
        failed.status_code,
        failed.error_code,
    )
    assert ["500"] == _answers(fake_graph)


async def test_a_503_after_taking_leaves_the_outcome_unknown_until_the_notification_comes(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(FailAfterTaking(503))

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    unknown = handle.history[-1]

    assert (Trigger.response_unknown, InviteState.requested) == (unknown.trigger, unknown.dest)
    assert InviteState.completed == await handle.wait()
    assert [
        (Trigger.response_unknown, InviteState.requested, 0.0),
        (Trigger.operation_completed, InviteState.completed, 2.0),
    ] == _path(handle)
    assert (["503"], True) == (_answers(fake_graph), fake_graph.requests[0].taken)


async def test_a_503_after_taking_with_no_notification_fails_as_outcome_unknown(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(FailAfterTaking(503), DropNotifications())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert (FailureReason.outcome_unknown, 90.0) == (failed.failure.reason, failed.history[-1].at)
    assert ["503"] == _answers(fake_graph)


async def test_a_connection_dropped_before_sending_is_retried(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DropBeforeSending())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.completed == await handle.wait()
    assert ["ConnectError", "200"] == _answers(fake_graph)
    assert [False, True] == [r.taken for r in fake_graph.requests]
    assert 1 == len(fake_graph.operations)


async def test_a_connection_that_never_comes_up_fails_the_invite_as_unreachable(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    attempts = callflow_client.retry.max_attempts
    fake_graph.fault(DropBeforeSending(times=attempts))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert FailureReason.unreachable == failed.failure.reason
    assert ["ConnectError"] * attempts == _answers(fake_graph)


async def test_a_connection_dropped_after_taking_is_not_sent_again(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DropAfterTaking())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.requested == handle.history[-1].dest
    assert InviteState.completed == await handle.wait()
    assert (["ReadError"], True) == (_answers(fake_graph), fake_graph.requests[0].taken)
    assert [Trigger.response_unknown, Trigger.operation_completed] == [
        t for t, _, _ in _path(handle)
    ]


async def test_an_answer_slower_than_the_participant_arrives_late_and_changes_nothing(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(SlowAnswer(5.0))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    late = handle.history[-1]
    assert [(Trigger.operation_completed, InviteState.completed, 2.0)] == _path(handle)
    assert (Trigger.accepted, True, 5.0) == (late.trigger, late.ignored, late.at)


async def test_a_slow_answer_before_the_participant_answers_is_taken_when_it_comes(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(SlowAnswer(1.5))

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    await handle.wait()

    assert [
        (Trigger.accepted, InviteState.running, 1.5),
        (Trigger.operation_completed, InviteState.completed, 2.0),
    ] == _path(handle)


# -- the notifications --------------------------------------------------------------------------


async def test_delayed_notifications_complete_the_invite_when_they_come(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DelayNotifications(30.0))

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    await handle.wait()

    assert (Trigger.operation_completed, InviteState.completed, 32.0) == _path(handle)[-1]


async def test_a_completion_delayed_past_callflows_deadline_comes_too_late(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DelayNotifications(100.0, only="operation"))

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    failed = await _failure(handle)
    await fake_graph.drain()

    assert (FailureReason.timeout, 90.0) == (failed.failure.reason, failed.history[-1].at)
    (completion,) = [s for s in fake_graph.sent if s.label == "operation"]
    assert completion.receipt is not None
    assert DeliveryOutcome.late == completion.receipt.deliveries[0].outcome


async def test_duplicated_notifications_are_reported_duplicate_and_change_nothing(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DuplicateNotifications())

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    await handle.wait()
    await fake_graph.drain()

    applied, duplicate = DeliveryOutcome.applied, DeliveryOutcome.duplicate
    assert [
        ("operation", applied),
        ("operation", duplicate),
        ("roster", applied),
        ("roster", duplicate),
    ] == [
        (s.label, s.receipt.deliveries[0].outcome if s.receipt else None) for s in fake_graph.sent
    ]
    assert [Trigger.accepted, Trigger.operation_completed] == [s.trigger for s in handle.history]


async def test_a_replacing_invite_told_of_its_original_calls_end_first_completes_at_once(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(ReorderNotifications())

    handle = await callflow_client.invite(CALL_ID, REPLACING)
    await handle.wait()
    await fake_graph.drain()

    assert ["original_deleted", "original_terminated", "roster", "operation"] == [
        s.label for s in fake_graph.sent
    ]
    assert [
        (Trigger.accepted, InviteState.running),
        (Trigger.original_gone, InviteState.running),
        (Trigger.original_gone, InviteState.running),
        (Trigger.operation_completed, InviteState.completed),
    ] == [(t, state) for t, state, _ in _path(handle)]


async def test_dropped_notifications_leave_callflows_deadline_to_fail_the_invite(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DropNotifications())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert (FailureReason.timeout, 90.0) == (failed.failure.reason, failed.history[-1].at)
    assert [] == fake_graph.sent


async def test_a_dropped_roster_update_does_not_stop_the_invite_completing(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DropNotifications(only="roster"))

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.completed == await handle.wait()
    await fake_graph.drain()
    assert ["operation"] == [s.label for s in fake_graph.sent]


async def test_a_replacing_invite_whose_original_call_is_never_reported_gone_times_out(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(DropNotifications(only=("original_terminated", "original_deleted")))

    handle = await callflow_client.invite(CALL_ID, REPLACING)

    failed = await _failure(handle)
    deadline = callflow_client.switchboard.deadlines.tearing_down_original
    assert [
        (Trigger.accepted, InviteState.running, 0.0),
        (Trigger.operation_completed, InviteState.tearing_down_original, 2.0),
        (Trigger.timed_out, InviteState.failed, 2.0 + deadline),
    ] == _path(handle)
    assert FailureReason.timeout == failed.failure.reason
    assert "was not reported gone" in failed.failure.message


async def test_notifications_sent_before_the_answer_are_applied(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(NotifyBeforeAnswer())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.completed == handle.state
    assert [(Trigger.operation_completed, InviteState.completed, 0.0)] == _path(handle)
    answer = handle.history[-1]
    assert (Trigger.accepted, True) == (answer.trigger, answer.ignored)
    assert ["operation", "roster"] == [s.label for s in fake_graph.sent]


async def test_a_notification_that_beats_the_answer_by_a_moment_is_applied(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(SlowAnswer(2.0 + 0.001))

    handle = await callflow_client.invite(CALL_ID, REPLACING)
    await handle.wait()

    assert [
        (Trigger.operation_completed, InviteState.tearing_down_original),
        (Trigger.original_gone, InviteState.completed),
    ] == [(t, state) for t, state, _ in _path(handle)]
    assert [2.0, 2.1] == pytest.approx([at for _, _, at in _path(handle)])


# -- the service's own failure, and the spec's quirks -------------------------------------------


async def test_an_unanswered_invite_fails_with_the_services_result_info_before_callflows_deadline(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.script("+12345678901", NeverAnswers())

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    failed = await _failure(handle)
    assert failed.result_info is not None
    assert (FailureReason.operation_failed, 408, 60.0) == (
        failed.failure.reason,
        failed.result_info.code,
        failed.history[-1].at,
    )
    assert fake_graph.ring_timeout < callflow_client.switchboard.deadlines.running


async def test_an_operation_id_of_null_is_matched_by_client_context(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.quirks = Quirks(null_operation_id=True)

    handle = await callflow_client.invite(CALL_ID, [PSTN])

    assert InviteState.completed == await handle.wait()
    await fake_graph.drain()
    (notification,) = fake_graph.sent[0].body["value"]
    assert None is notification["resourceData"]["id"]
    assert notification["resource"].endswith("/operations/participants")


@pytest.mark.parametrize("prefix", ["/app", "/communications"])
async def test_app_and_communications_paths_name_the_same_resources(
    prefix: Any, callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.quirks = Quirks(operation_prefix=prefix, roster_prefix=prefix)

    handle = await callflow_client.invite(CALL_ID, [PSTN])
    await handle.wait()
    await fake_graph.drain()

    resources = [s.body["value"][0]["resource"] for s in fake_graph.sent]
    assert [True, True] == [r.startswith(f"{prefix}/calls/{CALL_ID}/") for r in resources]
    assert handle.invite.roster is not None


# -- faults are values ----------------------------------------------------------------------------


def test_a_fault_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="times"):
        Throttle(times=0)
    with pytest.raises(ValueError, match="status"):
        Refuse(200)
    with pytest.raises(ValueError, match="unknown notification labels"):
        DropNotifications(only="rooster")
    with pytest.raises(ValueError, match="delay"):
        SlowAnswer(-1.0)


async def test_http_faults_are_taken_one_per_post_in_order() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    fake.fault(Throttle(times=2), Refuse(502))

    async with fake.http_client() as http:
        statuses = [
            (
                await http.post(f"/communications/calls/{CALL_ID}/participants/invite", json={})
            ).status_code
            for _ in range(4)
        ]

    assert [429, 429, 502, 400] == statuses
