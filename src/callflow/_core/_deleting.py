"""The DELETE of a participant, attempt by attempt: the core's removal flow.

Theory of operation
-------------------
``DELETE /communications/calls/{id}/participants/{participantId}`` cancels an invitee's
outstanding invite (the ring stops) or hangs up a participant who joined. Unlike the
invite POST it is idempotent: sending it twice removes the participant once, and the
second gets 404. So every failure that may be passing is retried under the
:class:`~callflow.RetryPolicy` (its attempts, backoff and ``Retry-After``):

* a status in ``retry_statuses`` (429) or any 5xx (including the ones after which an
  invite POST's outcome is unknown: re-sending a DELETE is safe);
* a request that was never sent, and one whose answer was lost.

2xx and 404 (already gone) are done. Any other status (400, 401, 403, ...) is the
service's refusal, and is final. :class:`Deleting` is I/O-free like
:class:`~callflow._core._retry.Sending`: the engine performs its :class:`Send` and
:class:`Wait` actions and feeds back what happened, and when. With an invite (a cancel),
it feeds the final answer to :meth:`Invite.delete_answered` or
:meth:`Invite.delete_failed`; without one (a removal of a participant who joined), the
result is :attr:`Deleting.result`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from ._records import HttpRequest
from ._retry import Action, RetryPolicy, Send, Stop, Wait, _header

if TYPE_CHECKING:
    from ._invite import Invite

__all__ = ["Deleting", "Removal"]


@attrs.frozen(kw_only=True)
class Removal:
    """How a DELETE of a participant ended.

    Attributes:
        participant_id: the participant.
        removed: True when the participant is gone (2xx, or 404: already gone).
        status_code: the last answer's HTTP status, or None when none came.
        reason: in words.
        at: when it ended (the time fed with the last answer), or None.

    """

    participant_id: str
    removed: bool
    status_code: int | None
    reason: str
    at: float | None = None


class Deleting:
    """One participant's DELETE, attempt by attempt: the engine performs, this decides.

    Args:
        request: the DELETE (:func:`~callflow._core._records.delete_request`).
        policy: the :class:`~callflow.RetryPolicy`.
        invite: the invite being cancelled, fed the final answer; None for a removal.
        deadline: no wait that would outlast it is taken (the invite's ``cancelling``
            deadline), or None.

    """

    __slots__ = (
        "attempt",
        "deadline",
        "fed",
        "invite",
        "participant_id",
        "policy",
        "request",
        "result",
    )

    def __init__(
        self,
        request: HttpRequest,
        policy: RetryPolicy,
        *,
        invite: Invite | None = None,
        deadline: float | None = None,
    ) -> None:
        self.request = request
        self.policy = policy
        self.invite = invite
        self.deadline = deadline
        self.participant_id = request.url.rsplit("/", 1)[-1]
        self.attempt = 0
        #: How it ended, once it has (:class:`Removal`).
        self.result: Removal | None = None
        #: True once the final answer was fed to the invite (the engine records it).
        self.fed = False

    def start(self) -> Action:
        """The first action: send."""
        self.attempt = 1
        return Send(1)

    def resume(self, *, at: float) -> Action:
        """After a :class:`Wait`: send again, unless the invite finished meanwhile."""
        del at
        invite = self.invite
        if invite is not None and invite.is_finished:
            return self._end(None, f"the invite ended {invite.state} while waiting", at=None)
        self.attempt += 1
        return Send(self.attempt)

    def answered(
        self,
        status_code: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        *,
        at: float,
        wall: float | None = None,
    ) -> Action:
        """The service answered the attempt: done, retry (:class:`Wait`), or refused."""
        if 200 <= status_code < 300 or status_code == 404:
            return self._end(status_code, f"HTTP {status_code}", at=at)
        if status_code in self.policy.retry_statuses or 500 <= status_code < 600:
            wait = self._retry(
                f"HTTP {status_code}",
                at,
                retry_after=_header(headers, "retry-after"),
                date=_header(headers, "date"),
                wall=wall,
            )
            if wait is not None:
                return wait
            return self._end(
                status_code, f"HTTP {status_code} after {self.attempt} attempt(s)", at=at
            )
        return self._end(status_code, f"HTTP {status_code}: refused", at=at)

    def not_sent(self, error: str, *, at: float) -> Action:
        """The request never left (no connection): retry, or give up."""
        return self._retry(f"{error} before sending", at) or self._gave_up(error, at)

    def lost(self, error: str, *, at: float) -> Action:
        """The answer was lost: a DELETE is idempotent, so it is sent again."""
        return self._retry(f"{error} after sending", at) or self._gave_up(error, at)

    def cannot_send(self, reason: str, *, at: float) -> Stop:
        """Something the engine needs to send failed (e.g. the token provider)."""
        return self._end(None, reason, at=at)

    def _gave_up(self, error: str, at: float) -> Stop:
        return self._end(None, f"{error}, after {self.attempt} attempt(s)", at=at)

    def _retry(
        self,
        why: str,
        at: float,
        *,
        retry_after: str | None = None,
        date: str | None = None,
        wall: float | None = None,
    ) -> Wait | None:
        delay = self.policy.delay(
            self.attempt, retry_after, key=self.request.url, date=date, now=wall
        )
        if delay is None or (self.deadline is not None and at + delay >= self.deadline):
            return None
        return Wait(delay, why)

    def _end(self, status_code: int | None, reason: str, *, at: float | None) -> Stop:
        removed = status_code is not None and (200 <= status_code < 300 or status_code == 404)
        self.result = Removal(
            participant_id=self.participant_id,
            removed=removed,
            status_code=status_code,
            reason=reason,
            at=at,
        )
        invite = self.invite
        if invite is not None and at is not None:
            self.fed = True
            if status_code is not None and removed:
                invite.delete_answered(self.participant_id, status_code, at=at)
            else:
                invite.delete_failed(self.participant_id, reason, at=at)
        return Stop(reason)
