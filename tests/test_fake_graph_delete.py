"""FakeGraph's participants: their ids, the DELETE that cancels or removes them, answers at
chosen times, unused scripts, and the public wire builders a step-through test needs.

The invite bodies are the spec's own (``SPEC_REQUESTS``, checked against the spec file by
test_fake_graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

import callflow
from callflow import NotificationKind
from callflow.testing import (
    CANCELLED_INFO,
    SPEC_REQUESTS,
    Answers,
    Declines,
    DropAfterTaking,
    DropBeforeSending,
    FailAfterTaking,
    FakeGraph,
    NeverAnswers,
    Operation,
    Quirks,
    Refuse,
    ScriptsNotUsed,
    Throttle,
    VirtualClock,
    call_state_notification,
    operation_notification,
    participant_removed_notification,
    roster_notification,
)

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
REQUEST: Mapping[str, Any] = SPEC_REQUESTS[4]  # one PSTN participant
PHONE: str = REQUEST["participants"][0]["identity"]["phone"]["id"]


def _fake(**kwargs: Any) -> tuple[FakeGraph, VirtualClock]:
    clock = VirtualClock()
    return FakeGraph(clock=clock, manual=True, **kwargs), clock


async def _invite(fake: FakeGraph) -> str:
    """POST the spec's example 4; return the participant id the answer gives."""
    async with fake.http_client() as http:
        response = await http.post(
            f"/communications/calls/{CALL_ID}/participants/invite", json=REQUEST
        )
    assert 200 == response.status_code
    participant_id = response.json()["participants"][0]["id"]
    assert isinstance(participant_id, str)
    return participant_id


async def _delete(fake: FakeGraph, participant_id: str) -> httpx.Response:
    async with fake.http_client() as http:
        return await http.delete(f"/communications/calls/{CALL_ID}/participants/{participant_id}")


# -- participant ids ----------------------------------------------------------------------------


async def test_the_answer_gives_each_participant_an_id_which_the_roster_repeats() -> None:
    fake, _ = _fake()

    participant_id = await _invite(fake)

    (operation,) = fake.operations.values()
    assert (participant_id,) == operation.participant_ids
    roster = next(p for p in fake.pending if p.label == "roster")
    assert [participant_id] == [e["id"] for e in roster.body["value"][0]["resourceData"]]


async def test_participant_ids_are_null_as_the_spec_prints_them_with_the_quirk() -> None:
    fake, _ = _fake(quirks=Quirks(null_participant_ids=True))

    async with fake.http_client() as http:
        response = await http.post(
            f"/communications/calls/{CALL_ID}/participants/invite", json=REQUEST
        )

    assert [None] == [p["id"] for p in response.json()["participants"]]


async def test_participant_ids_repeat_with_the_seed_and_differ_between_participants() -> None:
    first, second = _fake(seed=7)[0], _fake(seed=7)[0]

    a, b = await _invite(first), await _invite(second)
    c = await _invite(first)

    assert a == b
    assert a != c


# -- the DELETE ---------------------------------------------------------------------------------


async def test_deleting_a_ringing_participant_answers_204_and_stops_the_ring() -> None:
    fake, clock = _fake()
    fake.script(PHONE, NeverAnswers())
    participant_id = await _invite(fake)
    clock.advance_to(30.0)

    response = await _delete(fake, participant_id)

    assert 204 == response.status_code
    assert b"" == response.content
    assert "removed" == fake.participant_state(CALL_ID, participant_id)
    assert () == fake.pending  # the service's own failure at 60 s is not sent
    deleted = fake.requests[-1]
    assert ("DELETE", "204", participant_id) == (
        deleted.method,
        deleted.answer,
        deleted.participant_id,
    )


async def test_deleting_a_joined_participant_answers_204_and_keeps_what_was_sent() -> None:
    fake, clock = _fake()
    fake.script(PHONE, Answers(after=5.0))
    participant_id = await _invite(fake)
    clock.advance_to(10.0)
    assert "joined" == fake.participant_state(CALL_ID, participant_id)

    response = await _delete(fake, participant_id)

    assert 204 == response.status_code
    assert ["operation", "roster"] == [p.label for p in fake.pending]


async def test_deleting_an_unknown_participant_answers_404() -> None:
    fake, _ = _fake()

    response = await _delete(fake, "0b1c0b1c-0000-4000-8000-000000000000")

    assert 404 == response.status_code
    assert "NotFound" == response.json()["error"]["code"]


async def test_a_second_delete_answers_404() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    await _delete(fake, participant_id)

    assert 404 == (await _delete(fake, participant_id)).status_code


async def test_deleting_a_participant_who_declined_answers_404() -> None:
    fake, clock = _fake()
    fake.script(PHONE, Declines(after=3.0))
    participant_id = await _invite(fake)
    clock.advance_to(4.0)

    assert 404 == (await _delete(fake, participant_id)).status_code


async def test_answers_at_a_chosen_time() -> None:
    fake, clock = _fake()
    fake.script(PHONE, Answers(after=45.0))
    participant_id = await _invite(fake)

    clock.advance_to(44.9)
    assert "ringing" == fake.participant_state(CALL_ID, participant_id)
    clock.advance_to(45.0)
    assert "joined" == fake.participant_state(CALL_ID, participant_id)
    assert 45.0 == next(p.due for p in fake.pending if p.label == "operation")


# -- DELETE faults ------------------------------------------------------------------------------


async def test_a_throttled_delete_answers_429_with_retry_after_and_removes_nobody() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    fake.fault_deletes(Throttle(retry_after=2.0))

    response = await _delete(fake, participant_id)

    assert (429, "2") == (response.status_code, response.headers["Retry-After"])
    assert "ringing" == fake.participant_state(CALL_ID, participant_id)
    assert 204 == (await _delete(fake, participant_id)).status_code  # the retry works


async def test_a_refused_delete_answers_the_error_and_removes_nobody() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    fake.fault_deletes(Refuse(503, code="ServiceUnavailable", message="busy"))

    response = await _delete(fake, participant_id)

    assert (503, "ServiceUnavailable") == (response.status_code, response.json()["error"]["code"])
    assert "ringing" == fake.participant_state(CALL_ID, participant_id)


async def test_a_delete_dropped_before_sending_removes_nobody() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    fake.fault_deletes(DropBeforeSending())

    with pytest.raises(httpx.ConnectError):
        await _delete(fake, participant_id)
    assert "ringing" == fake.participant_state(CALL_ID, participant_id)


async def test_a_delete_whose_answer_is_lost_removed_the_participant_and_a_retry_gets_404() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    fake.fault_deletes(DropAfterTaking())

    with pytest.raises(httpx.ReadError):
        await _delete(fake, participant_id)

    assert "removed" == fake.participant_state(CALL_ID, participant_id)
    assert 404 == (await _delete(fake, participant_id)).status_code


async def test_a_delete_that_fails_after_taking_it_removed_the_participant() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)
    fake.fault_deletes(FailAfterTaking(500))

    assert 500 == (await _delete(fake, participant_id)).status_code
    assert "removed" == fake.participant_state(CALL_ID, participant_id)


async def test_delete_faults_do_not_touch_invite_posts() -> None:
    fake, _ = _fake()
    fake.fault_deletes(Throttle())

    await _invite(fake)  # answered 200

    assert ["200"] == [r.answer for r in fake.requests]


def test_fault_deletes_takes_only_http_faults() -> None:
    fake, _ = _fake()

    with pytest.raises(TypeError, match="fault_deletes takes HTTP faults"):
        fake.fault_deletes(callflow.testing.DropNotifications())  # type: ignore[arg-type]


# -- what follows the 204 -----------------------------------------------------------------------


async def test_after_a_delete_the_fake_notifies_nothing_by_default() -> None:
    fake, _ = _fake()
    participant_id = await _invite(fake)

    await _delete(fake, participant_id)

    assert () == fake.pending


async def test_after_a_delete_the_fake_can_fail_the_ringing_operation() -> None:
    fake, _ = _fake(after_delete="operation_failed")
    participant_id = await _invite(fake)

    await _delete(fake, participant_id)

    (item,) = fake.pending
    (note,) = callflow.parse_notifications(item.body)
    assert (NotificationKind.operation, "failed") == (note.kind, note.status)
    assert REQUEST["clientContext"] == note.client_context
    result_info = item.body["value"][0]["resourceData"]["resultInfo"]
    assert CANCELLED_INFO["code"] == result_info["code"]


async def test_after_a_delete_the_fake_can_notify_the_roster_removal() -> None:
    fake, _ = _fake(after_delete="roster_removal")
    participant_id = await _invite(fake)

    await _delete(fake, participant_id)

    (item,) = fake.pending
    (note,) = callflow.parse_notifications(item.body)
    assert (NotificationKind.participant_deleted, participant_id) == (
        note.kind,
        note.participant_id,
    )


def test_an_unknown_after_delete_is_refused() -> None:
    with pytest.raises(ValueError, match="after_delete must be one of"):
        FakeGraph(after_delete="hang_up")  # type: ignore[arg-type]


# -- unused scripts -----------------------------------------------------------------------------


async def test_a_scripted_answer_never_used_fails_at_exit() -> None:
    fake = FakeGraph(clock=VirtualClock())

    with pytest.raises(ScriptsNotUsed, match=r"never used: '\+12345678901' \(Declines"):
        async with fake:
            fake.script(PHONE, Declines())


async def test_unused_scripts_can_be_allowed() -> None:
    async with FakeGraph(clock=VirtualClock(), assert_all_used=False) as fake:
        fake.script(PHONE, Declines())


async def test_a_used_script_passes_at_exit() -> None:
    async with FakeGraph(clock=VirtualClock(), manual=True) as fake:
        fake.script(PHONE, Declines())
        await _invite(fake)


async def _script_unused_then_raise() -> None:
    async with FakeGraph(clock=VirtualClock()) as fake:
        fake.script(PHONE, Declines())
        raise KeyError("from the test")


async def test_the_blocks_own_exception_wins_over_unused_scripts() -> None:
    with pytest.raises(KeyError, match="from the test"):
        await _script_unused_then_raise()


def test_check_all_used_is_available_without_running() -> None:
    fake, _ = _fake()
    fake.script(PHONE, Answers(after=1.0))

    with pytest.raises(ScriptsNotUsed):
        fake.check_all_used()


# -- the public wire builders -------------------------------------------------------------------

OPERATION = Operation(
    id="eec3812a-fdc3-4fb4-825c-a06c9f35414e",
    call_id=CALL_ID,
    client_context=REQUEST["clientContext"],
    participants=REQUEST["participants"],
    participant_ids=["1f2e3d4c-0000-4000-8000-000000000001"],
)


def test_the_operation_builder_makes_a_notification_callflow_reads() -> None:
    (completed,) = callflow.parse_notifications(operation_notification(OPERATION))
    (failed,) = callflow.parse_notifications(
        operation_notification(OPERATION, result_info={"code": 603, "subcode": 0, "message": "no"})
    )

    assert (NotificationKind.operation, OPERATION.id, "completed") == (
        completed.kind,
        completed.operation_id,
        completed.status,
    )
    assert ("failed", True) == (failed.status, failed.has_result_info)


def test_the_roster_builder_names_each_participant_by_id() -> None:
    (roster,) = callflow.parse_notifications(roster_notification(OPERATION))

    assert NotificationKind.roster == roster.kind
    assert list(OPERATION.participant_ids) == [e["id"] for e in roster.resource_data]


@pytest.mark.parametrize(
    ("state", "kind"),
    [("terminated", NotificationKind.call_ended), ("established", NotificationKind.call_updated)],
)
def test_the_call_state_builder(state: str, kind: NotificationKind) -> None:
    (note,) = callflow.parse_notifications(call_state_notification(CALL_ID, state))

    assert (kind, CALL_ID) == (note.kind, note.call_id)


def test_the_participant_removed_builder() -> None:
    (note,) = callflow.parse_notifications(participant_removed_notification(CALL_ID, "p-1"))

    assert (NotificationKind.participant_deleted, "p-1") == (note.kind, note.participant_id)


def test_a_step_through_invite_completes_on_built_notifications() -> None:
    invite = callflow.Invite(
        CALL_ID, REQUEST["participants"], client_context=OPERATION.client_context
    )
    invite.receive_response(200, None, callflow.testing.response_body(OPERATION), at=0.0)

    for note in callflow.parse_notifications(operation_notification(OPERATION)):
        invite.receive_notification(note)

    assert callflow.InviteState.completed == invite.state
