"""Spec example 4: invite one PSTN participant to an existing call.

The participant is a phone number, in E.164 format. Against the embedded fake Graph
service, the script sends the spec's request as printed: the service answers 200 with
the operation running; the phone "answers", and the notifications the spec shows
(operation completed, then the roster update) move the invite to completed:

    requested -> running -> completed

Against the real Graph (examples/README.md), it calls CALLFLOW_PHONE_NUMBER into
CALLFLOW_CALL_ID; the bot's application instance needs a phone number assigned.

Run:  python examples/invite_pstn.py
"""

from __future__ import annotations

from typing import Any

import _common
import callflow
from callflow.testing import SPEC_REQUESTS


def participants(real: bool) -> list[dict[str, Any]]:
    """The phone to invite: the spec's, or CALLFLOW_PHONE_NUMBER."""
    if not real:
        return list(SPEC_REQUESTS[4]["participants"])
    phone = _common.env("CALLFLOW_PHONE_NUMBER")  # E.164: +12345678901
    return [{"identity": {"phone": {"id": phone}}}]


async def play(graph: _common.Graph) -> bool:
    client_context = None if graph.real else SPEC_REQUESTS[4]["clientContext"]
    handle = await graph.invite(participants(graph.real), client_context=client_context)
    return await graph.follow(handle, expect=callflow.InviteState.completed)


def main(argv: list[str] | None = None) -> int:
    return _common.run(argv, __doc__, example=4, play=play)


if __name__ == "__main__":
    raise SystemExit(main())
