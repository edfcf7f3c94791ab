"""A roster on a busy call: what is worked out once per notification, per invite the same.

The switchboard offers a roster to every invite on its call. Which entry is whose (the
roster's :class:`~callflow._core._notifications.RosterIndex`) and what the roster does to
the roster an invite keeps are worked out once per notification; these tests pin that
each invite still gets exactly what a scan of the roster, invite by invite, would give.
"""

from __future__ import annotations

from typing import Any

from callflow import DeliveryOutcome, Invite, Switchboard, parse_notifications
from callflow._core._notifications import CommsNotification

CALL = "busy-call"


def _entry(phone: str, pid: str | None, **more: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": pid,
        "info": {"identity": {"phone": {"id": phone}}},
        **more,
    }


def _roster(*entries: dict[str, Any], call: str = CALL) -> CommsNotification:
    body = {
        "value": [
            {
                "changeType": "updated",
                "resource": f"/communications/calls/{call}/participants",
                "resourceData": list(entries),
            }
        ]
    }
    (n,) = parse_notifications(body)
    return n


def _delta(sequence: int, *entries: dict[str, Any]) -> CommsNotification:
    body = {
        "value": [
            {
                "changeType": "updated",
                "resource": f"/communications/calls/{CALL}/participants",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.deltaParticipants",
                    "sequenceNumber": sequence,
                    "participants": list(entries),
                },
            }
        ]
    }
    (n,) = parse_notifications(body)
    return n


def _invite(i: int, *phones: str) -> Invite:
    people = [{"identity": {"phone": {"id": p}}} for p in phones]
    return Invite(CALL, people, client_context=f"cc-{i}", invite_id=f"id-{i}")


def test_each_invitee_takes_the_first_matching_entry_in_roster_order_not_yet_taken() -> None:
    invite = _invite(0, "+15550000001", "+15550000001", "+15550000002")
    roster = _roster(
        _entry("+15550000002", "p-a"),
        _entry("+15550000001", None),  # no id: gives nothing
        _entry("+15550000001", "p-b"),
        _entry("+15550000001", "p-c"),
    )

    invite.offer(roster, at=1.0)

    assert ("p-b", "p-c", "p-a") == invite.participant_ids


def test_every_invite_on_the_call_gets_a_delivery_and_its_own_ids() -> None:
    board = Switchboard()
    invites = [_invite(i, f"+1555000{i:04d}") for i in range(50)]
    for invite in invites:
        board.add(invite, at=0.0)
    roster = _roster(*(_entry(f"+1555000{i:04d}", f"p-{i}") for i in range(50)))

    receipt = board.receive([roster], at=1.0)

    assert [i.client_context for i in invites] == [d.client_context for d in receipt.deliveries]
    assert {DeliveryOutcome.applied} == {d.outcome for d in receipt.deliveries}
    assert [(f"p-{i}",) for i in range(50)] == [i.participant_ids for i in invites]


def test_invites_keeping_different_rosters_each_judge_the_new_one_by_their_own() -> None:
    first, second = _invite(1, "+15550000001"), _invite(2, "+15550000002")
    older = _delta(5, _entry("+15550000001", "p-1"))
    newer = _delta(9, _entry("+15550000002", "p-2"))
    first.offer(older, at=1.0)
    second.offer(newer, at=1.0)
    between = _delta(7, _entry("+15550000003", "p-3"))

    # Alternate, so a remembered verdict for one kept roster is never reused for another.
    outcomes = [first.offer(between, at=2.0), second.offer(between, at=2.0)]
    outcomes.append(first.offer(between, at=3.0))

    assert ["applied", "late", "late"] == [o.value for o in outcomes]
    assert first.roster is not None
    assert not first.roster.is_delta
    assert ["p-1", "p-3"] == [p.id for p in first.roster.participants]
    assert second.roster is newer


def test_a_moved_participant_left_when_the_source_roster_shows_its_id_removed() -> None:
    source = "source-meeting"
    person = {"identity": {"phone": {"id": "+15550000009"}}}
    invite = Invite(
        CALL,
        [{**person, "replacesCallId": source, "participantId": "moved"}],
        client_context="cc-move",
        invite_id="id-move",
    )
    stays = _roster(_entry("+15550000009", "other", removedState={"reason": "x"}), call=source)
    leaves = _roster(_entry("+15550000008", "moved", removedState={"reason": "x"}), call=source)

    assert not invite.original_already_gone
    invite.offer(stays, at=1.0)
    assert not invite.original_already_gone
    invite.offer(leaves, at=2.0)
    assert invite.original_already_gone
