"""Cancel through Client + FakeGraph, on asyncio and trio: the ring stops, or callflow says why not.

The paging bot's story (issue 12): ring the on-call for 30 s; they would answer at 45 s.
callflow's deadline must stop the ring (``DELETE .../participants/{participantId}``), so
they never join. Every race of the issue is played here against the fake service, whose
DELETE answers 204 for a ringing or joined participant and 404 otherwise, takes faults,
and notifies nothing after the 204 unless told to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from callflow import (
    Client,
    Delivery,
    DeliveryOutcome,
    FailureReason,
    InviteFailed,
    InviteHandle,
    InviteState,
    JsonlRecorder,
    MemoryRecorder,
    RemoveFailed,
    RetryPolicy,
    Trigger,
)
from callflow._cli import main as cli_main
from callflow._trace import read_trace, replay_all
from callflow.testing import (
    SPEC_REQUESTS,
    Accepts,
    Answers,
    Declines,
    DelayNotifications,
    DropAfterTaking,
    FailAfterTaking,
    FakeGraph,
    Quirks,
    Refuse,
    SlowAnswer,
    Throttle,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
ON_CALL = "+12345678901"
PSTN: Mapping[str, Any] = {"identity": {"phone": {"id": ON_CALL}}}
REPLACING: list[Any] = list(SPEC_REQUESTS[3]["participants"])


@pytest.fixture
async def late_fake(virtual_clock: VirtualClock) -> AsyncIterator[FakeGraph]:
    """A fake service whose on-call answers at 45 s, too late for a 30 s deadline."""
    async with FakeGraph(clock=virtual_clock) as fake:
        fake.script(ON_CALL, Answers(after=45.0))
        yield fake


def _deletes(fake: FakeGraph) -> list[tuple[str, float]]:
    return [(r.answer, r.at) for r in fake.requests if r.method == "DELETE"]


async def _joined(client: Client) -> InviteHandle:
    """An invite of the on-call that completed (they joined)."""
    handle = await client.invite(CALL_ID, [PSTN])
    await handle.wait()
    return handle


def _path(handle: InviteHandle) -> list[tuple[Trigger, InviteState]]:
    return [(s.trigger, s.dest) for s in handle.history if not s.ignored]


class Run:
    """A Client on the fake service, the way a bot holds one."""

    def __init__(self, fake: FakeGraph, clock: VirtualClock, **kwargs: Any) -> None:
        self.fake = fake
        self.clock = clock
        self.unheard: list[Delivery] = []
        self.kwargs = kwargs

    async def __aenter__(self) -> Client:
        self._http = self.fake.http_client()
        await self._http.__aenter__()
        self.client = Client(
            self._http,
            clock=self.clock,
            retry=RetryPolicy(jitter=False),
            on_unmatched=self.unheard.append,
            **self.kwargs,
        )
        await self.client.__aenter__()
        self.fake.deliver_to(self.client)
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        self.fake.deliver_to(None)
        await self.client.__aexit__(None, None, None)
        await self._http.__aexit__(None, None, None)


# -- deadlines cancel -----------------------------------------------------------------------


async def test_the_deadline_stops_the_ring_so_a_late_answer_never_joins(
    late_fake: FakeGraph, virtual_clock: VirtualClock
) -> None:
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN], timeout=30.0)
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
        await virtual_clock.sleep(60.0)  # past the moment they would have answered
    (pid,) = handle.invite.participant_ids
    assert pid is not None
    assert (InviteState.cancelled, FailureReason.timeout) == (
        handle.state,
        failed.value.failure.reason,
    )
    assert [("204", 30.0)] == _deletes(late_fake)
    assert "removed" == late_fake.participant_state(CALL_ID, pid)
    assert [] == [s.label for s in late_fake.sent if s.label == "completed"]


async def test_a_deadline_before_the_post_is_answered_cancels_once_the_answer_gives_the_id(
    late_fake: FakeGraph, virtual_clock: VirtualClock
) -> None:
    late_fake.fault(SlowAnswer(40.0))
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN], timeout=30.0)
        state = await handle.cancel()
    assert handle.failure is not None
    assert (InviteState.cancelled, FailureReason.timeout, [("204", 40.0)]) == (
        state,
        handle.failure.reason,
        _deletes(late_fake),
    )
    assert [
        (Trigger.timed_out, InviteState.cancelling),
        (Trigger.accepted, InviteState.cancelling),
        (Trigger.deleted, InviteState.cancelled),
    ] == _path(handle)


# -- the bot's cancel -----------------------------------------------------------------------


async def test_a_cancel_stops_the_ring_and_wait_raises_invite_failed_reason_cancelled(
    late_fake: FakeGraph, virtual_clock: VirtualClock
) -> None:
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN])
        await virtual_clock.sleep(10.0)
        state = await handle.cancel()
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert (InviteState.cancelled, FailureReason.cancelled, [("204", 10.0)]) == (
        state,
        failed.value.failure.reason,
        _deletes(late_fake),
    )


async def test_cancel_from_two_tasks_at_once_sends_one_delete_and_both_see_cancelled(
    late_fake: FakeGraph, virtual_clock: VirtualClock
) -> None:
    late_fake.fault_deletes(SlowAnswer(2.0))
    results: list[InviteState] = []
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN])

        async def cancel() -> None:
            results.append(await handle.cancel())

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel)
            tg.start_soon(cancel)
    assert ([InviteState.cancelled] * 2, 1) == (results, len(_deletes(late_fake)))


async def test_a_cancel_of_a_completed_invite_changes_nothing_and_sends_nothing(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    async with Run(fake_graph, virtual_clock) as client:
        handle = await _joined(client)

        state = await handle.cancel()
    assert (InviteState.completed, None, []) == (state, handle.failure, _deletes(fake_graph))


async def test_a_cancel_of_a_failed_invite_returns_failed_without_raising(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    fake_graph.script(ON_CALL, Declines())
    async with Run(fake_graph, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN])
        with pytest.raises(InviteFailed):
            await handle.wait()

        state = await handle.cancel()
    assert handle.failure is not None
    assert (InviteState.failed, FailureReason.operation_failed, []) == (
        state,
        handle.failure.reason,
        _deletes(fake_graph),
    )


async def test_a_handle_with_no_client_cannot_cancel() -> None:
    from callflow import CallflowError, Invite

    handle = InviteHandle(Invite(CALL_ID, [PSTN]))

    with pytest.raises(CallflowError, match="no Client"):
        await handle.cancel()


# -- races ----------------------------------------------------------------------------------


async def test_a_completion_while_the_delete_is_in_flight_shows_both_and_ends_cancelled(
    virtual_clock: VirtualClock,
) -> None:
    async with FakeGraph(clock=virtual_clock) as fake:
        fake.manual = True
        fake.script(ON_CALL, Accepts(after=5.0))
        fake.fault_deletes(SlowAnswer(3.0))
        async with Run(fake, virtual_clock) as client:
            handle = await client.invite(CALL_ID, [PSTN])
            await virtual_clock.sleep(10.0)  # joined at 5 s; the news has not come yet
            async with anyio.create_task_group() as tg:
                tg.start_soon(handle.cancel)
                await virtual_clock.sleep(1.0)  # the DELETE is in flight
                await fake.deliver_all()  # the completion arrives meanwhile
    assert [
        (Trigger.accepted, InviteState.running),
        (Trigger.cancel_requested, InviteState.cancelling),
        (Trigger.operation_completed, InviteState.cancelling),
        (Trigger.deleted, InviteState.cancelled),
    ] == _path(handle)
    (pid,) = handle.invite.participant_ids
    assert pid is not None
    assert "removed" == fake.participant_state(CALL_ID, pid)


async def test_a_delete_answered_404_means_already_gone_and_late_news_is_reported_late(
    virtual_clock: VirtualClock,
) -> None:
    async with FakeGraph(clock=virtual_clock) as fake:
        fake.script(ON_CALL, Declines(after=2.0))
        fake.fault(DelayNotifications(20.0))  # the decline's news is slow
        run = Run(fake, virtual_clock)
        async with run as client:
            handle = await client.invite(CALL_ID, [PSTN])
            await virtual_clock.sleep(5.0)
            state = await handle.cancel()
            await fake.drain()
    assert (InviteState.cancelled, [("404", 5.0)]) == (state, _deletes(fake))
    assert [DeliveryOutcome.late] == [
        d.outcome for d in run.unheard if d.notification.kind.value == "operation"
    ]


@pytest.mark.parametrize(
    ("fault", "answers"),
    [
        (Throttle(retry_after=2.0), [("429", 1.0), ("204", 3.0)]),
        (Refuse(500), [("500", 1.0), ("204", 1.5)]),
        (FailAfterTaking(503), [("503", 1.0), ("404", 1.5)]),
        (DropAfterTaking(), [("ReadError", 1.0), ("404", 1.5)]),
    ],
    ids=["429", "500", "503 after taking", "dropped after taking"],
)
async def test_a_delete_that_fails_in_passing_is_retried_because_a_delete_is_idempotent(
    late_fake: FakeGraph, virtual_clock: VirtualClock, fault: Any, answers: list[Any]
) -> None:
    late_fake.fault_deletes(fault)
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN])
        await virtual_clock.sleep(1.0)
        state = await handle.cancel()
    assert (InviteState.cancelled, answers) == (state, _deletes(late_fake))


@pytest.mark.parametrize(
    "faults",
    [(Refuse(403, code="Forbidden"),), (Refuse(503, times=5),)],
    ids=["refused 403", "503 until the retries are spent"],
)
async def test_a_delete_that_cannot_be_done_fails_the_invite_saying_it_may_still_ring(
    late_fake: FakeGraph, virtual_clock: VirtualClock, faults: tuple[Any, ...]
) -> None:
    late_fake.fault_deletes(*faults)
    async with Run(late_fake, virtual_clock) as client:
        handle = await client.invite(CALL_ID, [PSTN])
        state = await handle.cancel()
        with pytest.raises(InviteFailed) as failed:
            await handle.wait()
    assert (InviteState.failed, FailureReason.cancel_failed) == (
        state,
        failed.value.failure.reason,
    )
    assert "may still be ringing" in failed.value.failure.message


async def test_with_no_participant_id_at_all_the_cancel_fails_at_its_deadline(
    virtual_clock: VirtualClock,
) -> None:
    async with FakeGraph(clock=virtual_clock, quirks=Quirks(null_participant_ids=True)) as fake:
        fake.script(ON_CALL, Answers(after=45.0))
        async with Run(fake, virtual_clock) as client:
            handle = await client.invite(CALL_ID, [PSTN])
            state = await handle.cancel()
        fake.assert_all_used = False
    assert handle.failure is not None
    assert (InviteState.failed, FailureReason.cancel_failed, []) == (
        state,
        handle.failure.reason,
        _deletes(fake),
    )
    assert "before the participant id was known" in handle.failure.message
    assert 30.0 == handle.history[-1].at


@pytest.mark.parametrize("after_delete", ["operation_failed", "roster_removal"])
async def test_what_the_service_notifies_after_the_204_changes_nothing(
    virtual_clock: VirtualClock, after_delete: Any
) -> None:
    async with FakeGraph(clock=virtual_clock, after_delete=after_delete) as fake:
        fake.script(ON_CALL, Answers(after=45.0))
        run = Run(fake, virtual_clock)
        async with run as client:
            handle = await client.invite(CALL_ID, [PSTN])
            state = await handle.cancel()
            steps = len(handle.history)
            await fake.drain()
    follow_up = fake.sent[-1]
    assert follow_up.receipt is not None
    assert (InviteState.cancelled, InviteState.cancelled) == (state, handle.state)
    assert DeliveryOutcome.applied not in [d.outcome for d in follow_up.receipt.deliveries]
    assert all(s.ignored for s in handle.history[steps:])


# -- replace_p2p ----------------------------------------------------------------------------


async def test_a_cancel_in_tearing_down_original_hangs_nobody_up_and_returns_completed(
    virtual_clock: VirtualClock,
) -> None:
    async with FakeGraph(clock=virtual_clock) as fake:
        fake.manual = True
        async with Run(fake, virtual_clock) as client:
            handle = await client.invite(CALL_ID, REPLACING)
            while handle.state is not InviteState.tearing_down_original:
                await fake.deliver_next()
            async with anyio.create_task_group() as tg:

                async def cancel() -> None:
                    assert InviteState.completed == await handle.cancel()

                tg.start_soon(cancel)
                await virtual_clock.sleep(0.01)
                await fake.deliver_all()  # the original call is torn down
    assert ([], InviteState.completed) == (_deletes(fake), handle.state)
    assert (Trigger.cancel_requested, InviteState.tearing_down_original) in _path(handle)


# -- removing a participant who joined -------------------------------------------------------


async def test_remove_hangs_up_a_participant_whose_invite_completed(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    async with Run(fake_graph, virtual_clock) as client:
        handle = await _joined(client)

        first = await handle.remove()
        again = await handle.remove()
    (pid,) = handle.invite.participant_ids
    assert pid is not None
    assert (True, False, InviteState.completed) == (first, again, handle.state)
    assert "removed" == fake_graph.participant_state(CALL_ID, pid)


async def test_remove_participant_that_is_refused_raises_remove_failed(
    fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    fake_graph.fault_deletes(Refuse(403, code="Forbidden"))
    async with Run(fake_graph, virtual_clock) as client:
        with pytest.raises(RemoveFailed) as failed:
            await client.remove_participant(CALL_ID, "some-participant")
    assert (403, "some-participant") == (failed.value.status_code, failed.value.participant_id)


async def test_remove_without_a_known_participant_id_raises_remove_failed(
    virtual_clock: VirtualClock,
) -> None:
    async with (
        FakeGraph(clock=virtual_clock, quirks=Quirks(null_participant_ids=True)) as fake,
        Run(fake, virtual_clock) as client,
    ):
        handle = await client.invite(CALL_ID, [PSTN])
        await handle.wait()
        with pytest.raises(RemoveFailed, match="id is not known"):
            await handle.remove()


# -- traces and replay ----------------------------------------------------------------------


async def test_recorded_cancels_replay_to_exactly_the_recorded_histories(
    virtual_clock: VirtualClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "cancels.jsonl"
    recorder = JsonlRecorder(trace)
    memory = MemoryRecorder()

    class Both:
        def record(self, event: Mapping[str, Any]) -> None:
            recorder.record(event)
            memory.record(event)

    async with FakeGraph(clock=virtual_clock) as fake:
        fake.script(ON_CALL, Answers(after=45.0))
        fake.fault_deletes(Throttle(retry_after=1.0))
        async with Run(fake, virtual_clock, recorder=Both()) as client:
            by_bot = await client.invite(CALL_ID, [PSTN], client_context="by-bot")
            await by_bot.cancel()  # 429, then 204
            fake.fault_deletes(Refuse(403))
            refused = await client.invite(CALL_ID, [PSTN], client_context="refused")
            await refused.cancel()  # 403: cancel_failed
            by_deadline = await client.invite(
                CALL_ID, [PSTN], client_context="deadline", timeout=5.0
            )
            with pytest.raises(InviteFailed):
                await by_deadline.wait()
    recorder.close()
    live = {h.client_context: list(h.history) for h in (by_bot, refused, by_deadline)}

    replayed = {i.client_context: list(i.history) for i in replay_all(read_trace(trace))}

    assert live == replayed
    assert [InviteState.cancelled, InviteState.failed, InviteState.cancelled] == [
        h.state for h in (by_bot, refused, by_deadline)
    ]
    assert {"cancel", "delete_response", "delete_failed"} <= {e["type"] for e in memory.events}
    assert 0 == cli_main(["replay", str(trace)])
    assert "cancelled" in capsys.readouterr().out
