"""The README's own workflow: ring the team for 20 s; nobody -> the caller goes to voicemail.

The declaration and the test below are the README's "Your own workflow" code, verbatim (a
test checks that). The test uses only what the pytest plugin gives a bot's test suite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import callflow
import callflow.diagrams
from callflow import FlowState, FlowTransition, FlowTrigger, InviteInto, Workflow
from callflow.testing import Answers, FakeGraph, NeverAnswers

pytestmark = pytest.mark.anyio

CALL_ID = "7531d31f-d10d-44de-802f-c569dbca451c"
README = Path(__file__).resolve().parent.parent / "README.md"


def team_then_voicemail(team: int) -> Workflow:
    """Ring participants 0..team-1 for 20 s; nobody -> invite participant `team` (voicemail)."""
    vm = team  # the last participant: the caller, moved into the voicemail meeting
    ended = ("failed", "timed_out", "cancelled")

    def on(source: str, trigger: str, dest: str, **also: Any) -> FlowTransition:
        return FlowTransition(source=source, trigger=FlowTrigger(trigger), dest=dest, **also)

    return Workflow(
        name="team_then_voicemail",
        participants=team + 1,
        states=[
            FlowState(name="ringing_team", deadline=20.0, rings=range(team)),
            FlowState(name="voicemail", deadline=60.0, rings=[vm]),
            *(
                FlowState(name=end, deadline=60.0, final=True)
                for end in ("answered", "in_voicemail", "failed", "cancelled")
            ),
        ],
        transitions=[
            on("ringing_team", "completed", "answered", effect="win"),
            *(on("ringing_team", t, "voicemail", condition="none_ringing") for t in ended),
            on("ringing_team", "deadline", "voicemail"),
            on("voicemail", "completed", "in_voicemail", invite=vm, effect="win"),
            *(on("voicemail", t, "failed", invite=vm) for t in ended),
            on("voicemail", "deadline", "failed"),
            # Anyone else who joins after the decision is removed again.
            *(
                on(s, "completed", s, effect="remove")
                for s in ("voicemail", "answered", "in_voicemail", "cancelled")
            ),
            *(on(s, "cancel", "cancelled") for s in ("ringing_team", "voicemail")),
        ],
    )


TEAM = ["7e1b4346-85a6-4bdd-abe3-d11c5d420efe", "1e126418-44a0-4a94-a6f8-0efe1ad71acb"]
VOICEMAIL_MEETING = "a7ebfb2d-871e-419c-87af-27290b22e8db"
CALLER = {
    "identity": {"user": {"id": "682b6c37-0729-4fab-ace6-d730d5d9137e"}},
    "replacesCallId": CALL_ID,  # where the caller is now
    "participantId": "7d501bf1-5ee4-4605-ba92-0ae4513c611c",  # the caller's leg in it
}


async def test_nobody_in_the_team_answers_so_the_caller_goes_to_voicemail(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    for agent in TEAM:
        fake_graph.script(agent, NeverAnswers())
    team = [{"identity": {"user": {"id": agent}}} for agent in TEAM]
    everyone: list[dict[str, Any] | InviteInto] = [*team, InviteInto(VOICEMAIL_MEETING, CALLER)]

    handle = await callflow_client.run_workflow(CALL_ID, everyone, team_then_voicemail(2))
    result = await handle.wait()

    assert ("in_voicemail", 2) == (result.outcome, result.answered)
    assert ["cancelled", "cancelled", "answered"] == [str(r.fate) for r in result.invites]


async def test_an_agent_answers_so_the_caller_stays(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.script(TEAM[0], NeverAnswers())
    fake_graph.script(TEAM[1], Answers(after=5.0))
    team = [{"identity": {"user": {"id": agent}}} for agent in TEAM]
    everyone: list[dict[str, Any] | InviteInto] = [*team, InviteInto(VOICEMAIL_MEETING, CALLER)]

    handle = await callflow_client.run_workflow(CALL_ID, everyone, team_then_voicemail(2))

    assert ("answered", 1) == ((r := await handle.wait()).outcome, r.answered)
    assert handle.invites[2] is None  # the caller was never moved


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.DOTALL)


def test_the_readme_shows_this_workflow_and_its_test_verbatim() -> None:
    section = README.read_text(encoding="utf-8").split("## Workflows", 1)[1].split("\n## ", 1)[0]
    source = Path(__file__).read_text(encoding="utf-8")
    blocks = _python_blocks(section)

    assert len(blocks) >= 2
    assert [] == [b for b in blocks[1:] if b not in source]


def test_your_own_workflow_is_drawn_from_its_declaration() -> None:
    mermaid = callflow.diagrams.flow_diagram(team_then_voicemail(2))

    assert "ringing_team: rings @0, @1, 20 s" in mermaid
    assert "voicemail --> in_voicemail: completed @2 / win" in mermaid
