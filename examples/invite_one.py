"""Spec example 1: invite one participant to an existing call.

The spec's request for this example carries a replacesCallId, so it is not a plain
invite: it asks the service to replace that peer-to-peer call with this one. callflow
therefore treats it as a replace_p2p invite, which is done only when the original call
is gone. Against the embedded fake Graph service, the script sends the request as
printed, and shows the teardown: the operation completes, the invite waits in
tearing_down_original, and the original call's termination completes it:

    requested -> running -> tearing_down_original -> completed

(The original call's deletion comes after that, and is absorbed as late.)

Against the real Graph (examples/README.md), it invites CALLFLOW_USER_ID into
CALLFLOW_CALL_ID, replacing CALLFLOW_REPLACES_CALL_ID if set (a plain invite if not).

Run:  python examples/invite_one.py
"""

from __future__ import annotations

import os
from typing import Any

import _common
import callflow
from callflow.testing import SPEC_REQUESTS


def participants(real: bool) -> list[dict[str, Any]]:
    """The participant to invite: the spec's, or CALLFLOW_USER_ID."""
    if not real:
        return list(SPEC_REQUESTS[1]["participants"])
    participant: dict[str, Any] = {"identity": {"user": {"id": _common.env("CALLFLOW_USER_ID")}}}
    replaces = os.environ.get("CALLFLOW_REPLACES_CALL_ID")
    if replaces:
        participant["replacesCallId"] = replaces
    return [participant]


async def play(graph: _common.Graph) -> bool:
    client_context = None if graph.real else SPEC_REQUESTS[1]["clientContext"]
    handle = await graph.invite(participants(graph.real), client_context=client_context)
    # callflow read the kind off the request: replacesCallId makes it replace_p2p.
    if handle.invite.kind is callflow.InviteKind.replace_p2p:
        print(
            f"\nThe participant carries replacesCallId {handle.invite.replaces_call_id}, so "
            "callflow treats\nthis as a replace_p2p invite: it completes only when that "
            "peer-to-peer call is gone."
        )
    return await graph.follow(handle, expect=callflow.InviteState.completed)


def main(argv: list[str] | None = None) -> int:
    return _common.run(argv, __doc__, example=1, play=play)


if __name__ == "__main__":
    raise SystemExit(main())
