"""The core's sending flow decides every retry: what is sent again, and what never is.

No I/O: each test drives :class:`Sending` by hand, as the Client does, with the time.
"""

from __future__ import annotations

import pytest

from callflow import FailureReason, Invite, InviteState, RetryPolicy, Trigger
from callflow._core._retry import Send, Sending, Stop, Wait, parse_retry_after
from spec_examples import examples

EXAMPLE = examples()[4]
TOO_MANY = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}


def invite(invite_id: str = "invite-1") -> Invite:
    return Invite.from_request(EXAMPLE.call_id, EXAMPLE.request, invite_id=invite_id)


def test_the_first_action_is_to_send() -> None:
    assert Send(1) == Sending(invite(), RetryPolicy(), None).start()


def test_a_429_with_retry_after_is_a_wait_of_that_long_then_a_second_send() -> None:
    flow = Sending(invite(), RetryPolicy(), deadline=90.0)
    flow.start()

    wait = flow.answered(429, {"Retry-After": "42"}, TOO_MANY, at=0.0)

    assert (Wait(42.0, "HTTP 429"), Send(2)) == (wait, flow.resume(at=42.0))


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_answer_means_outcome_unknown_and_is_never_sent_again(status: int) -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(), deadline=90.0)
    flow.start()

    action = flow.answered(status, {}, None, at=1.0)

    assert (True, InviteState.requested, Trigger.response_unknown) == (
        isinstance(action, Stop),
        sent.state,
        sent.history[-1].trigger,
    )


def test_invite_receive_response_agrees_with_the_flow_on_503() -> None:
    sent = invite()

    assert InviteState.requested == sent.receive_response(503, {}, None, at=1.0)
    assert Trigger.response_unknown == sent.history[-1].trigger


def test_a_500_is_the_services_answer_and_fails_the_invite_with_its_error() -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(), deadline=90.0)
    flow.start()
    error = {"error": {"code": "InternalServerError", "message": "oops"}}

    flow.answered(500, {}, error, at=1.0)

    assert sent.failure is not None
    assert (InviteState.failed, FailureReason.http_error, "InternalServerError") == (
        sent.state,
        sent.failure.reason,
        sent.failure.error_code,
    )


def test_a_retry_after_past_the_deadline_is_not_waited_for_the_429_stands() -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(), deadline=30.0)
    flow.start()

    action = flow.answered(429, {"Retry-After": "60"}, TOO_MANY, at=0.0)

    assert sent.failure is not None
    assert (True, 429) == (isinstance(action, Stop), sent.failure.status_code)


def test_an_http_date_retry_after_counts_from_the_answers_date_header() -> None:
    headers = {
        "Retry-After": "Wed, 02 Dec 2026 05:00:42 GMT",
        "Date": "Wed, 02 Dec 2026 05:00:00 GMT",
    }
    flow = Sending(invite(), RetryPolicy(), deadline=90.0)
    flow.start()

    assert Wait(42.0, "HTTP 429") == flow.answered(429, headers, TOO_MANY, at=0.0, wall=0.0)


def test_an_http_date_retry_after_with_nothing_to_count_from_falls_back_to_backoff() -> None:
    assert parse_retry_after("Wed, 02 Dec 2026 05:00:42 GMT") is None


def test_a_connection_that_never_opened_is_retried_then_fails_unreachable() -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(max_attempts=2, jitter=False), deadline=90.0)
    flow.start()

    first = flow.not_sent("ConnectError", at=0.0)
    again = flow.resume(at=0.5)
    last = flow.not_sent("ConnectError", at=0.5)

    assert sent.failure is not None
    assert (Wait(0.5, "ConnectError before sending"), Send(2), FailureReason.unreachable) == (
        first,
        again,
        sent.failure.reason,
    )
    assert isinstance(last, Stop)


def test_a_lost_answer_is_outcome_unknown_and_stops() -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(), deadline=90.0)
    flow.start()

    action = flow.lost("ReadTimeout", at=1.0)

    assert (
        Stop("ReadTimeout after the POST was sent: outcome unknown"),
        Trigger.response_unknown,
    ) == (
        action,
        sent.history[-1].trigger,
    )


def test_an_invite_taken_while_waiting_is_not_sent_again() -> None:
    sent = invite()
    flow = Sending(sent, RetryPolicy(), deadline=90.0)
    flow.start()
    flow.answered(429, {"Retry-After": "5"}, TOO_MANY, at=0.0)
    sent.receive_response(200, {}, EXAMPLE.response, at=2.0)  # e.g. a duplicate request

    assert isinstance(flow.resume(at=5.0), Stop)


def test_jitter_is_derived_from_the_invite_and_the_attempt_so_replays_wait_alike() -> None:
    policy = RetryPolicy(backoff=8.0)
    waits = [policy.backoff_for(attempt, key) for key in ("a", "b") for attempt in (1, 2)]

    assert waits == [policy.backoff_for(attempt, key) for key in ("a", "b") for attempt in (1, 2)]
    assert len(set(waits)) == 4
    assert all(0.0 <= w < 8.0 * 2 ** (i % 2) for i, w in enumerate(waits))
