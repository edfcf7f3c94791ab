"""When to send the invite POST again, and when never to.

Theory of operation
-------------------
An invite POST that reached the service rings the participant. Sending it again rings
them twice. So the policy splits failures by whether the request can have been taken:

* **refused, safe to retry**: a 429 (the service did not take it; wait for its
  ``Retry-After``, seconds or an HTTP date, else capped exponential backoff with full
  jitter), and a connection that failed before the request was sent.
* **outcome unknown, never retried**: the statuses in ``unknown_statuses`` (503 and 504
  by default) and a read timeout or dropped connection after sending. The invite waits in
  ``requested`` for a notification carrying its clientContext until its deadline.
* **answered**: anything else is the answer, fed to the invite as it is.

The waiting itself goes through the engine's :class:`~callflow._clock.Clock` (anyio, or a
virtual clock in tests). stamina was considered: it sleeps through ``asyncio.sleep`` or
``trio.sleep`` directly, which a virtual clock cannot skip, and it cannot be told "this
attempt must not be retried because the request may have been taken" per exception
instance; the loop here is twenty lines in :meth:`callflow.Client.invite`.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from datetime import datetime, timezone

import attrs

from .._exceptions import InviteError

__all__ = ["RetryPolicy", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns:
        The seconds (never negative), or None when absent or unreadable.

    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the engine retries the invite POST.

    Attributes:
        max_attempts: attempts in all, the first included.
        backoff: the first backoff in seconds, doubled each attempt...
        max_backoff: ...up to this.
        max_retry_after: a longer ``Retry-After`` is not waited for: the 429 stands.
        jitter: full jitter (a random delay up to the backoff) when True.
        retry_statuses: refused statuses worth another attempt.
        unknown_statuses: statuses after which the outcome is unknown (never re-sent).

    """

    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    jitter: bool = True
    retry_statuses: frozenset[int] = frozenset({429})
    unknown_statuses: frozenset[int] = frozenset({503, 504})
    random: Callable[[], float] = attrs.field(default=random.random, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InviteError("RetryPolicy.max_attempts: at least 1")
        if self.retry_statuses & self.unknown_statuses:
            raise InviteError("RetryPolicy: a status cannot be both retried and unknown")

    def backoff_for(self, attempt: int) -> float:
        """The backoff after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return ceiling * float(self.random()) if self.jitter else ceiling

    def delay(self, attempt: int, retry_after: str | None) -> float | None:
        """How long to wait before the next attempt, or None to stop retrying."""
        if attempt >= self.max_attempts:
            return None
        told = parse_retry_after(retry_after)
        if told is None:
            return self.backoff_for(attempt)
        return told if told <= self.max_retry_after else None
