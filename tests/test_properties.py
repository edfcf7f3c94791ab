"""Orderings, duplicates and losses: an invite ends where its complete inputs say, whatever way.

Each scenario is one spec example's inputs: the 200 response and its two notifications,
plus the teardown of the original call or meeting leg for the replacing examples (1, 3,
5), and a declined invite (example 4 with its completion turned into a 403 failure).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow import (
    CallflowError,
    DeliveryOutcome,
    Invite,
    InviteState,
    Switchboard,
    parse_notifications,
)
from spec_examples import Example

Body = dict[str, Any]
Build = Callable[[Example], Body]
RESPONSE = "response"
Input = tuple[str, bytes]  # ("response", b"") or ("notification", body bytes)

# name: (example, its teardown too, declined instead of completed, the final state)
SCENARIOS = {
    "example1": (1, True, False, InviteState.completed),
    "example2": (2, False, False, InviteState.completed),
    "example3": (3, True, False, InviteState.completed),
    "example4": (4, False, False, InviteState.completed),
    "example5": (5, True, False, InviteState.completed),
    "example4-declined": (4, False, True, InviteState.failed),
}


class Scenario:
    def __init__(
        self, name: str, spec: dict[int, Example], request: Build, teardown: Build, declined: Build
    ) -> None:
        number, torn_down, is_declined, self.final = SCENARIOS[name]
        self.example = spec[number]
        self.request = request(self.example)
        completion = declined(self.example) if is_declined else self.example.completed
        bodies = [completion, self.example.roster]
        if torn_down:
            bodies.append(teardown(self.example))
        self.inputs: list[Input] = [(RESPONSE, b"")]
        self.inputs += [("notification", json.dumps(b).encode()) for b in bodies]

    def invite(self) -> Invite:
        return Invite.from_request(self.example.call_id, self.request)

    def feed(self, invite: Invite, item: Input) -> None:
        what, body = item
        if what == RESPONSE:
            invite.receive_response(200, {}, self.example.response, at=0.0)
        else:
            for notification in parse_notifications(body):
                invite.offer(notification, at=0.0)

    def route(self, board: Switchboard, invite: Invite, item: Input) -> None:
        what, body = item
        if what == RESPONSE:
            invite.receive_response(200, {}, self.example.response, at=0.0)
            board.note_response(invite, at=0.0)
            return
        receipt = board.receive(body, at=0.0)
        # nothing is dropped in silence: the notification is in the receipt
        expected = json.loads(body)["value"]
        assert expected == [d.notification.to_json() for d in receipt.deliveries][:1]
        assert DeliveryOutcome.unmatched not in {d.outcome for d in receipt.deliveries}


@pytest.fixture(scope="session", params=list(SCENARIOS))
def scenario(
    request: pytest.FixtureRequest,
    spec: dict[int, Example],
    trackable_request: Build,
    teardown: Build,
    declined: Build,
) -> Scenario:
    return Scenario(request.param, spec, trackable_request, teardown, declined)


def orders(n: int) -> st.SearchStrategy[list[int]]:
    """Any ordering, duplication or loss of ``n`` inputs."""
    return st.lists(st.integers(0, n - 1), max_size=2 * n + 2)


@st.composite
def complete_orders(draw: st.DrawFn, n: int) -> list[int]:
    """Any ordering of ``n`` inputs, each at least once, some more than once."""
    extra = draw(st.lists(st.integers(0, n - 1), max_size=n))
    order: list[int] = draw(st.permutations([*range(n), *extra]))
    return order


def step(action: Callable[[], object]) -> None:
    """Run one input; callflow's own errors are allowed, nothing else is."""
    with contextlib.suppress(CallflowError):
        action()


def assert_terminal_states_are_kept(states: list[InviteState]) -> None:
    for before, after in itertools.pairwise(states):
        if before.is_terminal:
            assert before == after


# -- through an Invite --------------------------------------------------------------------


@settings(deadline=None)
@given(data=st.data())
def test_any_delivery_to_an_invite_raises_nothing_foreign_and_keeps_a_terminal_state(
    scenario: Scenario, data: st.DataObject
) -> None:
    order = data.draw(orders(len(scenario.inputs)))
    invite = scenario.invite()
    states = [invite.state]

    for index in order:
        step(lambda: scenario.feed(invite, scenario.inputs[index]))  # noqa: B023
        states.append(invite.state)

    assert_terminal_states_are_kept(states)


@settings(deadline=None)
@given(data=st.data())
def test_any_complete_delivery_to_an_invite_ends_in_the_same_state(
    scenario: Scenario, data: st.DataObject
) -> None:
    order = data.draw(complete_orders(len(scenario.inputs)))
    invite = scenario.invite()

    for index in order:
        scenario.feed(invite, scenario.inputs[index])

    assert scenario.final == invite.state


# -- through a Switchboard ----------------------------------------------------------------


def run_board(
    scenario: Scenario, order: list[int], add_at: int
) -> tuple[Invite, list[InviteState]]:
    """Feed ``order`` through a switchboard; the invite is added before input ``add_at``."""
    board = Switchboard()
    invite = scenario.invite()
    states = [invite.state]
    for position, index in enumerate([*order, None]):
        if position == add_at:
            step(lambda: board.add(invite, at=0.0))
            states.append(invite.state)
        if index is not None:
            step(lambda: scenario.route(board, invite, scenario.inputs[index]))  # noqa: B023
            states.append(invite.state)
    return invite, states


@settings(deadline=None)
@given(data=st.data())
def test_any_delivery_through_a_switchboard_raises_nothing_foreign_and_keeps_a_terminal_state(
    scenario: Scenario, data: st.DataObject
) -> None:
    order = data.draw(orders(len(scenario.inputs)))
    add_at = data.draw(st.integers(0, len(order)))

    _, states = run_board(scenario, order, add_at)

    assert_terminal_states_are_kept(states)


@settings(deadline=None)
@given(data=st.data())
def test_any_complete_delivery_through_a_switchboard_ends_in_the_same_state(
    scenario: Scenario, data: st.DataObject
) -> None:
    order = data.draw(complete_orders(len(scenario.inputs)))
    add_at = data.draw(st.integers(0, len(order)))

    invite, _ = run_board(scenario, order, add_at)

    assert scenario.final == invite.state
