"""Spec example 3: invite a participant to a group call, replacing a peer-to-peer call.

The participant carries replacesCallId, the peer-to-peer call this group call replaces
(Graph takes one participant per such request). callflow treats it as a replace_p2p
invite: the operation's completion alone does not finish it; it waits in
tearing_down_original until the service reports the original call terminated or
deleted, as the spec's closing note says it will. Against the embedded fake Graph
service, with the example's own quirk (its roster update names the replaced call):

    requested -> running -> tearing_down_original -> completed

Against the real Graph (examples/README.md), it invites CALLFLOW_USER_ID into
CALLFLOW_CALL_ID, replacing the peer-to-peer call CALLFLOW_REPLACES_CALL_ID.

Run:  python examples/replace_p2p.py
"""

from __future__ import annotations

from typing import Any

import _common
import callflow
from callflow.testing import SPEC_REQUESTS


def participants(real: bool) -> list[dict[str, Any]]:
    """The participant and the call it replaces: the spec's, or from the environment."""
    if not real:
        return list(SPEC_REQUESTS[3]["participants"])
    return [
        {
            "replacesCallId": _common.env("CALLFLOW_REPLACES_CALL_ID"),
            "identity": {"user": {"id": _common.env("CALLFLOW_USER_ID")}},
        }
    ]


async def play(graph: _common.Graph) -> bool:
    client_context = None if graph.real else SPEC_REQUESTS[3]["clientContext"]
    handle = await graph.invite(participants(graph.real), client_context=client_context)
    print(f"\nReplacing the peer-to-peer call {handle.invite.replaces_call_id}.")
    return await graph.follow(handle, expect=callflow.InviteState.completed)


def main(argv: list[str] | None = None) -> int:
    return _common.run(argv, __doc__, example=3, play=play)


if __name__ == "__main__":
    raise SystemExit(main())
