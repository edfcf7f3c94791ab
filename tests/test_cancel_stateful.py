"""The Switchboard's stateful property test, with cancels and DELETE answers mixed in.

On top of the rules of :mod:`test_switchboard_stateful` (invites added, answered, notified
in any order, the clock advanced, deadlines expired, invites released), hypothesis cancels
invites, sends rosters that name the invitee's participant id, and answers the DELETEs the
invites ask for (204, 404, 403). The same promises hold, and a cancelled invite's reason
is always ``cancelled`` or ``timeout``; only a cancelling invite asks for a DELETE.
"""

from __future__ import annotations

import json

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from callflow import FailureReason, Invite, InviteState
from callflow.testing import Operation, roster_notification
from test_switchboard_stateful import EXAMPLE, SwitchboardMachine, _for


def _roster_with_id(k: int) -> bytes:
    """Invite ``k``'s call roster, its invitee's entry carrying participant id ``p-k``."""
    op = Operation(
        id=f"op-{k}",
        call_id=f"call-{k}",
        participants=_for(k, EXAMPLE.request)["participants"],
        participant_ids=(f"p-{k}",),
    )
    return json.dumps(roster_notification(op)).encode()


class CancellingMachine(SwitchboardMachine):
    @rule(invite=SwitchboardMachine.invites)
    def cancel(self, invite: Invite) -> None:
        invite.cancel(at=self.now)
        self.board.note_response(invite, at=self.now)

    @rule(k=st.integers(0, 5))
    def roster_naming_the_participant(self, k: int) -> None:
        self._account(self.board.receive(_roster_with_id(k), at=self.now).deliveries)

    @rule(invite=SwitchboardMachine.invites, status=st.sampled_from([204, 404, 403]))
    def answer_the_delete(self, invite: Invite, status: int) -> None:
        for request in invite.delete_requests():
            invite.delete_answered(request.url.rsplit("/", 1)[-1], status, at=self.now)
        self.board.note_response(invite, at=self.now)

    @invariant()
    def a_cancelled_invite_says_who_cancelled_it(self) -> None:
        for invite in self.made:
            if invite.state is InviteState.cancelled:
                assert invite.failure is not None
                assert invite.failure.reason in (FailureReason.cancelled, FailureReason.timeout)

    @invariant()
    def only_a_cancelling_invite_asks_for_a_delete(self) -> None:
        for invite in self.made:
            if invite.state is not InviteState.cancelling:
                assert () == invite.delete_requests()


CancellingMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestCancelling = CancellingMachine.TestCase
