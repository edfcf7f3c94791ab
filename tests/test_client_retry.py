"""The invite POST under the retry policy: what is sent again, and what never is.

A 429 and a request that never left are retried; a 503, a 504 or an answer lost after
sending are not (the participant would ring twice): the invite waits in ``requested``
for a notification carrying its clientContext. Time is virtual; Retry-After and backoff
pass instantly, and the endpoint records the virtual time of each request.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from callflow import (
    Deadlines,
    DeliveryOutcome,
    FailureReason,
    InviteFailed,
    InviteState,
    RetryPolicy,
    Trigger,
)
from callflow.testing import VirtualClock
from test_client import (
    InviteEndpoint,
    accepted,
    invite_example,
    open_client,
    spec,
    throttled,
)

pytestmark = pytest.mark.anyio

EXAMPLE = spec(4)


# -- 429: refused, so sent again -----------------------------------------------------------


async def test_429_with_retry_after_seconds_waits_that_long_on_the_clock(
    virtual_clock: VirtualClock,
) -> None:
    endpoint = InviteEndpoint(virtual_clock, throttled("42"), accepted(EXAMPLE))
    started = time.monotonic()
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
    assert [0.0, 42.0] == endpoint.times
    assert time.monotonic() - started < 10.0, "the wait is virtual, not real"
    assert InviteState.running == handle.state


async def test_429_with_retry_after_http_date_waits_until_then(
    virtual_clock: VirtualClock,
) -> None:
    # An HTTP date is wall-clock time with whole seconds: the wait is 42 s, give or take 1.
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=43), usegmt=True)
    endpoint = InviteEndpoint(virtual_clock, throttled(when), accepted(EXAMPLE))
    started = time.monotonic()
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
    first, second = endpoint.times
    assert 0.0 == first
    assert 41.0 < second <= 43.0
    assert time.monotonic() - started < 10.0, "the wait is virtual, not real"
    assert InviteState.running == handle.state


async def test_429_without_retry_after_backs_off_exponentially(
    virtual_clock: VirtualClock,
) -> None:
    policy = RetryPolicy(backoff=1.5, jitter=False)
    endpoint = InviteEndpoint(virtual_clock, throttled(), throttled(), accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock, retry=policy) as client:
        handle = await invite_example(client, EXAMPLE)
    assert [0.0, 1.5, 4.5] == endpoint.times
    assert InviteState.running == handle.state


async def test_429_backoff_is_jittered_by_the_policy(virtual_clock: VirtualClock) -> None:
    policy = RetryPolicy(backoff=2.0, jitter=True, random=lambda: 0.25)
    endpoint = InviteEndpoint(virtual_clock, throttled(), throttled(), accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock, retry=policy) as client:
        await invite_example(client, EXAMPLE)
    assert [0.0, 0.5, 1.5] == endpoint.times


async def test_429_every_time_fails_after_max_attempts_with_status_429(
    virtual_clock: VirtualClock,
) -> None:
    policy = RetryPolicy(max_attempts=3, backoff=1.0, jitter=False)
    endpoint = InviteEndpoint(virtual_clock, throttled())
    async with open_client(endpoint, virtual_clock, retry=policy) as client:
        handle = await invite_example(client, EXAMPLE)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert 3 == len(endpoint.requests)
    assert (FailureReason.http_error, 429, "TooManyRequests") == (
        caught.value.failure.reason,
        caught.value.status_code,
        caught.value.error_code,
    )


async def test_retry_after_past_the_deadline_is_not_waited_for(
    virtual_clock: VirtualClock,
) -> None:
    deadlines = Deadlines(requested=30.0)
    endpoint = InviteEndpoint(virtual_clock, throttled("60"), accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock, deadlines=deadlines) as client:
        handle = await invite_example(client, EXAMPLE)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert [0.0] == endpoint.times
    assert 429 == caught.value.status_code


# -- refused for good ----------------------------------------------------------------------


async def test_403_raises_invite_failed_with_graphs_error(virtual_clock: VirtualClock) -> None:
    error = {"error": {"code": "Forbidden", "message": "Application is not authorized."}}
    endpoint = InviteEndpoint(virtual_clock, httpx.Response(403, json=error))
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
        assert InviteState.failed == handle.state
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert 1 == len(endpoint.requests)
    assert (403, "Forbidden", "Application is not authorized.") == (
        caught.value.status_code,
        caught.value.error_code,
        caught.value.error_message,
    )
    assert FailureReason.http_error == caught.value.failure.reason
    assert caught.value.result_info is None
    assert [InviteState.failed] == [s.dest for s in caught.value.history]


# -- lost after sending: never sent again --------------------------------------------------

LOST = [
    pytest.param(httpx.Response(503), id="503"),
    pytest.param(httpx.Response(504), id="504"),
    pytest.param(httpx.ReadTimeout, id="ReadTimeout"),
]


@pytest.mark.parametrize("lost", LOST)
async def test_lost_answer_is_not_resent_and_the_invite_keeps_waiting(
    lost: httpx.Response | type[httpx.TransportError], virtual_clock: VirtualClock
) -> None:
    endpoint = InviteEndpoint(virtual_clock, lost, accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
        await virtual_clock.sleep(Deadlines().requested / 2)
        assert InviteState.requested == handle.state
        assert Trigger.response_unknown == handle.history[-1].trigger
    assert 1 == len(endpoint.requests)


@pytest.mark.parametrize("lost", LOST)
async def test_lost_answer_is_resolved_by_a_late_notification_with_its_client_context(
    lost: httpx.Response | type[httpx.TransportError], virtual_clock: VirtualClock
) -> None:
    endpoint = InviteEndpoint(virtual_clock, lost, accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
        await virtual_clock.sleep(10.0)
        receipt = await client.receive_notifications(EXAMPLE.completed)
        assert [DeliveryOutcome.applied] == [d.outcome for d in receipt.deliveries]
        assert InviteState.completed == await handle.wait()
    assert 1 == len(endpoint.requests)
    assert EXAMPLE.response["id"] == handle.operation_id


@pytest.mark.parametrize("lost", LOST)
async def test_lost_answer_with_no_notification_fails_at_the_deadline_as_outcome_unknown(
    lost: httpx.Response | type[httpx.TransportError], virtual_clock: VirtualClock
) -> None:
    endpoint = InviteEndpoint(virtual_clock, lost, accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock) as client:
        handle = await invite_example(client, EXAMPLE)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert 1 == len(endpoint.requests)
    assert FailureReason.outcome_unknown == caught.value.failure.reason
    assert Deadlines().requested == caught.value.history[-1].at
    assert EXAMPLE.request["clientContext"] in caught.value.failure.message


# -- never left: sent again ----------------------------------------------------------------


@pytest.mark.parametrize("unsent", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_request_that_never_left_is_retried(
    unsent: type[httpx.TransportError], virtual_clock: VirtualClock
) -> None:
    policy = RetryPolicy(backoff=2.0, jitter=False)
    endpoint = InviteEndpoint(virtual_clock, unsent, accepted(EXAMPLE))
    async with open_client(endpoint, virtual_clock, retry=policy) as client:
        handle = await invite_example(client, EXAMPLE)
    assert [0.0, 2.0] == endpoint.times
    assert InviteState.running == handle.state


async def test_unreachable_every_time_fails_after_max_attempts(
    virtual_clock: VirtualClock,
) -> None:
    policy = RetryPolicy(max_attempts=3, backoff=1.0, jitter=False)
    endpoint = InviteEndpoint(virtual_clock, httpx.ConnectError)
    async with open_client(endpoint, virtual_clock, retry=policy) as client:
        handle = await invite_example(client, EXAMPLE)
        with pytest.raises(InviteFailed) as caught:
            await handle.wait()
    assert [0.0, 1.0, 3.0] == endpoint.times
    assert FailureReason.unreachable == caught.value.failure.reason
    assert caught.value.status_code is None
