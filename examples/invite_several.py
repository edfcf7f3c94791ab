"""Spec example 2: invite several participants to an existing group call.

The spec prints this request with replacesCallId set on both participants. Graph reads
only the first participant of a request that replaces a call, and silently drops the
rest, so callflow refuses it before anything is sent (an InviteError names the
problem). The script shows that refusal, then invites the same two participants with
replacesCallId null, as the spec's own response echoes them. Against the embedded fake
Graph service, the operation completes and the roster update names both:

    requested -> running -> completed

Against the real Graph (examples/README.md), it invites the users in CALLFLOW_USER_ID
(comma-separated, up to 5) into the group call CALLFLOW_CALL_ID.

Run:  python examples/invite_several.py
"""

from __future__ import annotations

from typing import Any

import _common
import callflow
from callflow.testing import SPEC_REQUESTS

PRINTED = SPEC_REQUESTS[2]  # the request exactly as the spec prints it


def participants(real: bool) -> list[dict[str, Any]]:
    """The spec's participants with replacesCallId null, or CALLFLOW_USER_ID's users."""
    if not real:
        return [{**p, "replacesCallId": None} for p in PRINTED["participants"]]
    users = [u.strip() for u in _common.env("CALLFLOW_USER_ID").split(",") if u.strip()]
    return [{"identity": {"user": {"id": user}}} for user in users]


async def play(graph: _common.Graph) -> bool:
    try:
        await graph.invite(PRINTED["participants"], client_context=PRINTED["clientContext"])
    except callflow.InviteError as exc:
        print(f"\nThe request as the spec prints it is refused, and nothing is sent:\n  {exc}")
    else:
        print("\ncallflow sent the request as printed; it should have refused it")
        return False
    print("\nSo the same participants are invited with replacesCallId null:")
    client_context = None if graph.real else PRINTED["clientContext"]
    handle = await graph.invite(participants(graph.real), client_context=client_context)
    return await graph.follow(handle, expect=callflow.InviteState.completed)


def main(argv: list[str] | None = None) -> int:
    return _common.run(argv, __doc__, example=2, play=play)


if __name__ == "__main__":
    raise SystemExit(main())
