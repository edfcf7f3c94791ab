"""When to send the invite POST again, and when never to: the core's sending flow.

Theory of operation
-------------------
An invite POST that reached the service rings the participant. Sending it again rings
them twice. So every result of an attempt is split by whether the request can have been
taken:

* **refused, safe to retry**: a status in ``retry_statuses`` (429: the service did not
  take it; wait for its ``Retry-After``, seconds or an HTTP date, else capped exponential
  backoff with full jitter), and a connection that failed before the request was sent.
* **outcome unknown, never retried**: the statuses in ``unknown_statuses`` and a read
  timeout or dropped connection after sending. The invite waits in ``requested`` for a
  notification carrying its clientContext until its deadline. 502 and 503 and 504 are
  unknown by default: each is said by something in front of the service (a gateway, a
  load balancer) that may have passed the POST on before it gave up, so the participant
  may be ringing. 500 is the service's own answer about the request, with Graph's error
  in the body: it is an answer (``rejected``), kept with its error code for the bot.
* **answered**: anything else is the answer, fed to the invite as it is.

:class:`Sending` is the flow, I/O-free in the manner of httpx's ``Auth.auth_flow``: the
engine asks it what to do (:class:`Send`, :class:`Wait`, :class:`Stop`), performs that,
and feeds back what happened, and when. The jitter is derived from the invite's id and
the attempt number, so a replay waits exactly as the original did; an HTTP-date
``Retry-After`` is resolved against the answer's ``Date`` header, else against the
wall-clock time the engine passes in. Nothing here reads a clock.

stamina was considered: it sleeps through ``asyncio.sleep`` or ``trio.sleep`` directly,
which a virtual clock cannot skip, and it cannot be told "this attempt must not be
retried because the request may have been taken" per exception instance.
"""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import ConfigurationError
from ._json import fast_loads
from ._machine import InviteState

if TYPE_CHECKING:
    from ._invite import Invite

__all__ = [
    "Action",
    "RetryPolicy",
    "Send",
    "Sending",
    "Stop",
    "UNKNOWN_STATUSES",
    "Wait",
    "parse_retry_after",
]

#: Answers after which the outcome of the POST is unknown (see the module's docstring).
UNKNOWN_STATUSES: frozenset[int] = frozenset({502, 503, 504})


def parse_retry_after(
    value: str | None, *, date: str | None = None, now: float | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Args:
        value: the header's value.
        date: the same answer's ``Date`` header: an HTTP date is counted from it.
        now: else the wall-clock time (seconds since the epoch) to count from.

    Returns:
        The seconds (never negative), or None when absent, unreadable, or an HTTP date
        with nothing to count from.

    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _epoch(value)
    start = _epoch(date) if date else now
    if when is None or start is None:
        return None
    return max(0.0, when - start)


def _epoch(value: str) -> float | None:
    """An HTTP date as seconds since the epoch (a date with no zone is UTC), or None."""
    parts = email.utils.parsedate_tz(value)
    if parts is None:
        return None
    if parts[9] is None:
        parts = (*parts[:9], 0)
    return float(email.utils.mktime_tz(parts))


def _fraction(key: str, attempt: int) -> float:
    """A jitter fraction in [0, 1) that depends only on ``key`` and ``attempt``."""
    digest = hashlib.blake2b(f"{key}\x00{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the invite POST is retried.

    Attributes:
        max_attempts: attempts in all, the first included.
        backoff: the first backoff in seconds, doubled each attempt...
        max_backoff: ...up to this.
        max_retry_after: a longer ``Retry-After`` is not waited for: the 429 stands.
        jitter: full jitter (a delay up to the backoff) when True. The fraction is
            derived from the invite's id and the attempt, so replays wait alike.
        retry_statuses: refused statuses worth another attempt.
        unknown_statuses: statuses after which the outcome is unknown (never re-sent).
        random: a source of jitter fractions to use instead of the derived ones.

    Raises:
        ConfigurationError: ``max_attempts`` below 1, or a status both retried and
            unknown.

    """

    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    jitter: bool = True
    retry_statuses: frozenset[int] = frozenset({429})
    unknown_statuses: frozenset[int] = UNKNOWN_STATUSES
    random: Callable[[], float] | None = attrs.field(default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts: at least 1")
        if self.retry_statuses & self.unknown_statuses:
            raise ConfigurationError("RetryPolicy: a status cannot be both retried and unknown")

    def backoff_for(self, attempt: int, key: str = "") -> float:
        """The backoff after failed attempt number ``attempt`` (1-based) of invite ``key``."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        if not self.jitter:
            return ceiling
        fraction = self.random() if self.random is not None else _fraction(key, attempt)
        return ceiling * float(fraction)

    def delay(
        self,
        attempt: int,
        retry_after: str | None,
        *,
        key: str = "",
        date: str | None = None,
        now: float | None = None,
    ) -> float | None:
        """How long to wait before the next attempt, or None to stop retrying."""
        if attempt >= self.max_attempts:
            return None
        told = parse_retry_after(retry_after, date=date, now=now)
        if told is None:
            return self.backoff_for(attempt, key)
        return told if told <= self.max_retry_after else None


@attrs.frozen
class Send:
    """Send the invite POST (attempt number ``attempt``, 1-based)."""

    attempt: int


@attrs.frozen
class Wait:
    """Wait ``seconds``, then ask :meth:`Sending.resume` what to do."""

    seconds: float
    reason: str


@attrs.frozen
class Stop:
    """Sending is over: the invite has its answer, has failed, or waits for a notification.

    Attributes:
        reason: in words.
        fed: the input the flow fed the invite on stopping when the engine could not know
            it (``"send_failed"``), so the engine records it; None otherwise.

    """

    reason: str
    fed: str | None = None


Action = Send | Wait | Stop


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None, name: str) -> str | None:
    """A header's value, case-insensitively (httpx.Headers, a dict, or pairs)."""
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        value = headers.get(name)  # httpx.Headers is case-insensitive already
        if value is not None:
            return value
        headers = headers.items()
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class Sending:
    """One invite's POST, attempt by attempt: the engine performs, this decides.

    Args:
        invite: the invite whose POST is sent; its answer and failures are fed to it.
        policy: the :class:`RetryPolicy`.
        deadline: the invite's current deadline: a wait that would outlast it is not
            taken (the attempt's result stands), or None.

    """

    __slots__ = ("attempt", "deadline", "invite", "policy")

    def __init__(self, invite: Invite, policy: RetryPolicy, deadline: float | None) -> None:
        self.invite = invite
        self.policy = policy
        self.deadline = deadline
        self.attempt = 0

    def start(self) -> Action:
        """The first action: send."""
        self.attempt = 1
        return Send(1)

    def resume(self, *, at: float) -> Action:
        """After a :class:`Wait`: send again, unless the invite moved on meanwhile.

        An invite cancelled while it waited was never taken by the service (the attempt
        before the wait was refused or never sent): it is not sent, and it ends
        ``cancelled`` (:meth:`Invite.send_failed`; ``Stop.fed`` says so).
        """
        invite = self.invite
        if invite.state is InviteState.cancelling:
            reason = "cancelled before the service took the POST: it was never sent again"
            invite.send_failed(reason, at=at)
            return Stop(reason, fed="send_failed")
        if not invite.is_waiting_to_be_taken:
            return Stop(f"the invite moved on to {self.invite.state} while waiting")
        self.attempt += 1
        return Send(self.attempt)

    def _wait(self, delay: float | None, at: float, reason: str) -> Wait | None:
        if delay is None or (self.deadline is not None and at + delay >= self.deadline):
            return None
        return Wait(delay, reason)

    def answered(
        self,
        status_code: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        body: bytes | str | Mapping[str, Any] | None,
        *,
        at: float,
        wall: float | None = None,
    ) -> Action:
        """The service answered the attempt.

        Args:
            status_code: the HTTP status.
            headers: the answer's headers.
            body: the answer's body.
            at: the time of the answer.
            wall: the wall-clock time (seconds since the epoch), for an HTTP-date
                ``Retry-After`` when the answer has no ``Date`` header.

        Returns:
            :class:`Wait` to retry, else :class:`Stop` (the answer was fed to the invite).

        """
        policy = self.policy
        invite = self.invite
        if status_code in policy.retry_statuses and invite.is_waiting_to_be_taken:
            delay = policy.delay(
                self.attempt,
                _header(headers, "retry-after"),
                key=invite.invite_id,
                date=_header(headers, "date"),
                now=wall,
            )
            wait = self._wait(delay, at, f"HTTP {status_code}")
            if wait is not None:
                return wait
        if isinstance(body, bytes):
            # With the speed extra the answer is decoded by msgspec, where its result is
            # exactly json's (else the invite decodes it, as always).
            decoded = fast_loads(body)
            if isinstance(decoded, dict):
                body = decoded
        invite.receive_response(
            status_code, headers, body, at=at, unknown_statuses=policy.unknown_statuses
        )
        return Stop(f"HTTP {status_code}: {invite.state}")

    def not_sent(self, error: str, *, at: float) -> Action:
        """The request never left (no connection): retry, or fail ``unreachable``."""
        wait = self._wait(
            self.policy.delay(self.attempt, None, key=self.invite.invite_id),
            at,
            f"{error} before sending",
        )
        if wait is not None:
            return wait
        reason = f"could not send the POST after {self.attempt} attempt(s): {error}"
        self.invite.send_failed(reason, at=at)
        return Stop(reason)

    def lost(self, error: str, *, at: float) -> Stop:
        """The request was sent and its answer lost: never re-sent; outcome unknown."""
        reason = f"{error} after the POST was sent: outcome unknown"
        self.invite.outcome_unknown(reason, at=at)
        return Stop(reason)

    def cannot_send(self, reason: str, *, at: float) -> Stop:
        """Something the engine needs to send failed (e.g. the token provider): fail."""
        self.invite.send_failed(reason, at=at)
        return Stop(reason)
