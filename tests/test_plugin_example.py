"""Testing a bot's invites with callflow's pytest plugin: no conftest, no tenant, no sleeping.

Installing callflow gives pytest three fixtures: ``virtual_clock``, ``fake_graph`` (a fake
Graph calls service) and ``callflow_client`` (a Client wired to it). Time is virtual: the
service's 60-second ring timeout below passes instantly.
"""

from __future__ import annotations

import pytest

import callflow
from callflow.testing import Declines, FakeGraph, NeverAnswers, Throttle, VirtualClock

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
PSTN_PARTICIPANT = {"identity": {"phone": {"id": "+12345678901"}}}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every test on asyncio and on trio."""
    return str(request.param)


async def test_the_invited_participant_joins(callflow_client: callflow.Client) -> None:
    handle = await callflow_client.invite(CALL_ID, [PSTN_PARTICIPANT])

    assert callflow.InviteState.completed == await handle.wait()


async def test_a_declined_invite_fails_with_the_services_result_info(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.script("+12345678901", Declines(code=603, subcode=0, message="Busy"))

    handle = await callflow_client.invite(CALL_ID, [PSTN_PARTICIPANT])

    with pytest.raises(callflow.InviteFailed) as failed:
        await handle.wait()
    assert failed.value.result_info is not None
    assert 603 == failed.value.result_info.code


async def test_an_unanswered_invite_fails_after_the_services_ring_timeout(
    callflow_client: callflow.Client, fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    fake_graph.script("+12345678901", NeverAnswers())

    handle = await callflow_client.invite(CALL_ID, [PSTN_PARTICIPANT])

    with pytest.raises(callflow.InviteFailed) as failed:
        await handle.wait()
    assert callflow.FailureReason.operation_failed == failed.value.failure.reason
    assert 60.0 == virtual_clock.now()


async def test_a_throttled_invite_is_sent_again_after_retry_after(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.fault(Throttle(retry_after=5))

    handle = await callflow_client.invite(CALL_ID, [PSTN_PARTICIPANT])
    await handle.wait()

    assert ["429", "200"] == [request.answer for request in fake_graph.requests]
    assert 5.0 == fake_graph.requests[1].at - fake_graph.requests[0].at


async def test_stepping_through_one_notification_at_a_time(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    running, completed = callflow.InviteState.running, callflow.InviteState.completed
    fake_graph.manual = True

    handle = await callflow_client.invite(CALL_ID, [PSTN_PARTICIPANT])
    assert [running] == [step.dest for step in handle.history]
    assert ["operation", "roster"] == [n.label for n in fake_graph.pending]

    await fake_graph.deliver_next()
    assert [running, completed] == [step.dest for step in handle.history]

    await fake_graph.deliver_next()
    assert handle.invite.roster is not None
    assert () == fake_graph.pending
