"""Each invite has its own id, made at the edge, and every trace event carries it."""

from __future__ import annotations

import pytest

import callflow
from callflow import InviteError, MemoryRecorder
from callflow._core._invite import Invite as CoreInvite
from callflow.testing import VirtualClock
from spec_examples import examples
from test_client import InviteEndpoint, accepted, invite_example, open_client

pytestmark = pytest.mark.anyio
EXAMPLE = examples()[4]


def test_the_public_invite_makes_its_ids_when_not_given() -> None:
    one, two = (callflow.Invite(EXAMPLE.call_id, EXAMPLE.request["participants"]) for _ in "12")

    assert (True, True) == (
        one.invite_id != two.invite_id,
        one.client_context != two.client_context,
    )


@pytest.mark.parametrize("missing", ["client_context", "invite_id"])
def test_the_core_invite_requires_its_ids(missing: str) -> None:
    ids = {"client_context": "ctx", "invite_id": "id-1"}
    del ids[missing]

    with pytest.raises(
        InviteError, match=f"{missing.replace('_c', 'C').replace('client', 'client')}"
    ):
        CoreInvite(EXAMPLE.call_id, EXAMPLE.request["participants"], **ids)


def test_the_invite_id_survives_the_plain_record() -> None:
    invite = callflow.Invite.from_request(EXAMPLE.call_id, EXAMPLE.request, invite_id="id-7")

    assert "id-7" == CoreInvite.from_dict(invite.to_dict()).invite_id


async def test_every_event_the_client_records_carries_the_invite_id(
    virtual_clock: VirtualClock,
) -> None:
    recorder = MemoryRecorder()
    endpoint = InviteEndpoint(virtual_clock, accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock, recorder=recorder) as client:
        first = await invite_example(client, EXAMPLE)
        second = await client.invite(EXAMPLE.call_id, EXAMPLE.request["participants"])

    ids = {first.invite_id: first.client_context, second.invite_id: second.client_context}
    assert 2 == len(ids)
    assert {"invite", "response", "result"} <= {e["type"] for e in recorder.events}
    assert all(ids[e["invite_id"]] == e["client_context"] for e in recorder.events)
