"""A stateful property test over the Switchboard: many invites, inputs in any order.

Hypothesis adds invites, answers their POSTs, feeds their notifications (duplicated,
reordered, before the invite exists), advances the clock, expires and releases. After
every step the machine's promises hold: a terminal invite never moves, each notification
gets exactly one final delivery, every step taken is a row of the declared table, the
backlog stays within its bounds, and no unfinished invite lacks a deadline.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from callflow import Deadlines, DeliveryOutcome, Invite, InviteState, Switchboard
from callflow._core._invite import Invite as CoreInvite
from callflow._core._machine import TABLES
from spec_examples import examples

EXAMPLE = examples()[4]  # a plain invite into a call
CALL, CONTEXT = EXAMPLE.call_id, EXAMPLE.request["clientContext"]
OPERATION = EXAMPLE.response["id"]
BACKLOG_LIMIT, BACKLOG_AGE = 4, 20.0


def _for(k: int, body: Any) -> Any:
    """The example's JSON, made invite ``k``'s: its own call, clientContext and operation."""
    text = json.dumps(body)
    for old, new in ((CALL, f"call-{k}"), (CONTEXT, f"ctx-{k}"), (OPERATION, f"op-{k}")):
        text = text.replace(old, new)
    return json.loads(text)


def _failed(body: dict[str, Any]) -> dict[str, Any]:
    failed: dict[str, Any] = json.loads(json.dumps(body))
    data = failed["value"][0]["resourceData"]
    data["status"] = "failed"
    data["resultInfo"] = {"code": 603, "subcode": 0, "message": "Declined"}
    return failed


NOTIFICATIONS = {
    "completed": EXAMPLE.completed,
    "failed": _failed(EXAMPLE.completed),
    "roster": EXAMPLE.roster,
}
FINAL = frozenset(DeliveryOutcome) - {DeliveryOutcome.backlogged}


class SwitchboardMachine(RuleBasedStateMachine):
    invites = Bundle("invites")

    def __init__(self) -> None:
        super().__init__()
        self.board = Switchboard(
            deadlines=Deadlines(requested=30.0, running=40.0, tearing_down_original=10.0),
            backlog_limit=BACKLOG_LIMIT,
            backlog_max_age=BACKLOG_AGE,
        )
        self.now = 0.0
        self.made: list[Invite] = []
        self.ended: dict[int, tuple[InviteState, int]] = {}  # id(invite): (state, moves)
        self.final: dict[int, int] = {}  # id(notification): its final deliveries
        self.waiting: set[int] = set()  # notifications in the backlog
        self.seen: list[Any] = []  # every notification, kept alive so that ids stay unique

    def _account(self, deliveries: Any) -> None:
        for d in deliveries:
            self.seen.append(d.notification)
            key = id(d.notification)
            if d.outcome is DeliveryOutcome.backlogged:
                self.waiting.add(key)
                continue
            self.waiting.discard(key)
            self.final[key] = self.final.get(key, 0) + 1
            assert self.final[key] == 1, f"{d.notification.describe()} delivered twice"

    @rule(target=invites, k=st.integers(0, 5))
    def add(self, k: int) -> CoreInvite:
        held = self.board.get(f"ctx-{k}")
        if held is not None and not held.is_finished:
            return held  # clientContext is the correlation key: one in flight per context
        invite = Invite.from_request(f"call-{k}", _for(k, EXAMPLE.request), invite_id=f"i{k}")
        self.made.append(invite)
        self._account(self.board.add(invite, at=self.now).deliveries)
        return invite

    @rule(invite=invites, status=st.sampled_from([200, 200, 403, 503]))
    def answer(self, invite: Invite, status: int) -> None:
        k = invite.call_id.split("-")[1]
        body = _for(int(k), EXAMPLE.response) if status == 200 else None
        invite.receive_response(status, {}, body, at=self.now)
        self.board.note_response(invite, at=self.now)

    @rule(
        k=st.integers(0, 5),
        which=st.lists(st.sampled_from(sorted(NOTIFICATIONS)), min_size=1, max_size=3),
        twice=st.booleans(),
    )
    def notify(self, k: int, which: list[str], twice: bool) -> None:
        bodies = [_for(k, NOTIFICATIONS[w]) for w in which]
        values = [v for b in bodies for v in b["value"]]
        if twice:
            values = values + values[::-1]  # duplicated, in the reverse order
        body = json.dumps({"value": values}).encode()
        before = set(self.waiting)
        receipt = self.board.receive(body, at=self.now)
        self._account(receipt.deliveries)
        # each of the body's notifications is in the receipt, and has had exactly one final
        # delivery or waits in the backlog (the receipt's others are backlog entries that
        # aged out meanwhile)
        new = {id(d.notification) for d in receipt.deliveries} - before
        assert len(values) == len(new)
        assert all((self.final.get(n) == 1) != (n in self.waiting) for n in new)

    @rule(seconds=st.floats(0.5, 25.0))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def expire(self) -> None:
        self._account(self.board.expire(at=self.now).deliveries)
        since = self.board.backlog_since
        assert since is None or self.now - since <= BACKLOG_AGE

    @rule(invite=invites)
    def release(self, invite: Invite) -> None:
        self.board.release(invite)
        assert self.board.deadline_of(invite) is None

    @invariant()
    def terminal_states_never_move(self) -> None:
        for invite in self.made:
            moves = sum(1 for s in invite.history if not s.ignored)
            if id(invite) in self.ended:
                assert self.ended[id(invite)] == (invite.state, moves)
            elif invite.is_finished:
                self.ended[id(invite)] = (invite.state, moves)

    @invariant()
    def every_step_is_a_row_of_the_declared_table(self) -> None:
        for invite in self.made:
            for step in invite.history:
                if not step.ignored:
                    rows = TABLES[invite.kind][(step.source, step.trigger)]
                    assert step.dest in {dest for dest, _ in rows}

    @invariant()
    def the_backlog_stays_within_its_count(self) -> None:
        assert len(self.board.backlog) <= BACKLOG_LIMIT
        assert len(self.board.backlog) == len(self.waiting)

    @invariant()
    def no_unfinished_invite_lacks_a_deadline(self) -> None:
        for invite in self.board:
            assert invite.is_finished or self.board.deadline_of(invite) is not None


SwitchboardMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestSwitchboard = SwitchboardMachine.TestCase


def test_released_invites_leave_the_deadline_index_at_once() -> None:
    board = Switchboard()
    held = [
        Invite.from_request(f"call-{k}", _for(k, EXAMPLE.request), invite_id=f"i{k}")
        for k in range(500)
    ]
    for invite in held:
        board.add(invite, at=0.0)

    for invite in held[:-1]:
        board.release(invite)

    assert (90.0, [None], ()) == (
        board.next_deadline(),
        list({board.deadline_of(i) for i in held[:-1]}),
        board.expire(at=89.0).timed_out,
    )
    assert (held[-1],) == board.expire(at=90.0).timed_out
