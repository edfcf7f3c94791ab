"""Random hunts and ring groups through Client + FakeGraph: each ends by its deadlines.

Whatever the participants do (answer at any time, decline, never answer), a workflow run
by the Client reports its result by the sum of its state deadlines, at most one
participant is left in the call, and that is the one the result names.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import callflow
from callflow.testing import Answers, Declines, FakeGraph, NeverAnswers, VirtualClock

CALL_ID = "7531d31f-d10d-44de-802f-c569dbca451c"
USERS = [
    "7e1b4346-85a6-4bdd-abe3-d11c5d420efe",
    "1e126418-44a0-4a94-a6f8-0efe1ad71acb",
    "278405a3-f568-4b3e-b684-009193463064",
]
SETTLE_FOR = 60.0

seconds = st.floats(min_value=0.5, max_value=50.0).map(lambda t: round(t, 1))
answer = st.one_of(
    seconds.map(lambda t: Answers(after=t)),
    seconds.map(lambda t: Declines(after=t)),
    st.just(NeverAnswers()),
)


async def play(kind: str, answers: list[Any], ring_for: float) -> tuple[Any, list[str]]:
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump)
        async with (
            FakeGraph(clock=clock, assert_all_used=False) as fake,
            fake.http_client() as http,
            callflow.Client(http, clock=clock, retry=callflow.RetryPolicy(jitter=False)) as client,
        ):
            fake.deliver_to(client)
            for user, scripted in zip(USERS, answers, strict=False):
                fake.script(user, scripted)
            people = [{"identity": {"user": {"id": u}}} for u in USERS[: len(answers)]]
            start = client.hunt if kind == "hunt" else client.ring_group
            handle = await start(CALL_ID, people, ring_for, settle_for=SETTLE_FOR)
            result = await handle.wait()
            await fake.drain()
            joined = []
            for i, invite in enumerate(handle.invites):
                ids = () if invite is None else invite.invite.participant_ids
                if any(p and fake.participant_state(CALL_ID, p) == "joined" for p in ids):
                    joined.append(str(i))
        tg.cancel_scope.cancel()
    return result, joined


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["hunt", "ring_group"]),
    answers=st.lists(answer, min_size=1, max_size=3),
    ring_for=st.sampled_from([10.0, 30.0]),
)
def test_every_workflow_ends_by_its_deadlines_with_at_most_the_winner_joined(
    backend: str, kind: str, answers: list[Any], ring_for: float
) -> None:
    result, joined = anyio.run(play, kind, answers, ring_for, backend=backend)

    rings = len(answers) if kind == "hunt" else 1
    assert result.at <= rings * ring_for + SETTLE_FOR
    assert ([] if result.answered is None else [str(result.answered)]) == joined
    assert (result.answered is None) == (result.outcome == "nobody_answered")
