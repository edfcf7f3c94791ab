"""Spec example 5: move one participant from one meeting to another.

The participant carries replacesCallId (the source meeting's call) and participantId
(who they are in it), so callflow treats it as a move_meeting invite: the operation's
completion alone does not finish it; it waits in tearing_down_original until the
service reports the participant gone from the source meeting. Against the embedded fake
Graph service:

    requested -> running -> tearing_down_original -> completed

(The source meeting's roster, showing the participant removed, comes after that and is
absorbed as late.) Both meetings must have been created by the same application.

Against the real Graph (examples/README.md), it moves CALLFLOW_PARTICIPANT_ID (the user
CALLFLOW_USER_ID) from the meeting call CALLFLOW_REPLACES_CALL_ID into CALLFLOW_CALL_ID.

Run:  python examples/move_meeting.py
"""

from __future__ import annotations

from typing import Any

import _common
import callflow
from callflow.testing import SPEC_REQUESTS


def participants(real: bool) -> list[dict[str, Any]]:
    """Who moves, and from where: the spec's, or from the environment."""
    if not real:
        return list(SPEC_REQUESTS[5]["participants"])
    return [
        {
            "replacesCallId": _common.env("CALLFLOW_REPLACES_CALL_ID"),
            "participantId": _common.env("CALLFLOW_PARTICIPANT_ID"),
            "identity": {"user": {"id": _common.env("CALLFLOW_USER_ID")}},
        }
    ]


async def play(graph: _common.Graph) -> bool:
    client_context = None if graph.real else SPEC_REQUESTS[5]["clientContext"]
    handle = await graph.invite(participants(graph.real), client_context=client_context)
    invite = handle.invite
    print(f"\nMoving participant {invite.participant_id} out of call {invite.replaces_call_id}.")
    return await graph.follow(handle, expect=callflow.InviteState.completed)


def main(argv: list[str] | None = None) -> int:
    return _common.run(argv, __doc__, example=5, play=play)


if __name__ == "__main__":
    raise SystemExit(main())
