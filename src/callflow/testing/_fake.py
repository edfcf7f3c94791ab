"""FakeGraph: an in-process Microsoft Graph calls service for invites, on your clock.

Theory of operation
-------------------
:class:`FakeGraph` plays the service's two halves:

1. **The API.** :attr:`FakeGraph.transport` is an ``httpx`` transport that answers
   ``POST /communications/calls/{id}/participants/invite`` as the spec does (200, a
   ``Location`` header, the ``inviteParticipantsOperation`` with status ``Running``).
   Taking an invite creates an :class:`~callflow.testing._wire.Operation` and plans its
   notifications on a timeline: the operation's end when the participants answer (see
   :mod:`callflow.testing._script`), then the roster, then for a replace_p2p the original
   call's termination and deletion, for a move_meeting the participant's removal from the
   source meeting. HTTP faults change the answer; notification faults change the plan.
   Each invited participant gets a participant id (the answer's ``participants[].id``
   and its roster entry's ``id``) and a *leg* whose state follows the clock: ringing
   until its scripted answer's time, then joined (or ended, for a decline or the ring
   timeout).
   It also answers ``DELETE /communications/calls/{id}/participants/{participantId}`` as
   the participant-delete page does: 204 for a ringing or joined participant, 404 for
   one it does not know (or already gone). A DELETE of a ringing participant stops the
   ring: the operation's planned notifications still to come are not sent. What the fake
   notifies after the 204 is :attr:`FakeGraph.after_delete` (nothing, by default: the
   page says a removed caller is dropped "with no pre- or post-removal notification").
   DELETEs take faults of their own (:meth:`FakeGraph.fault_deletes`).
2. **The callbacks.** Planned notifications go to a
   :class:`~callflow.testing._delivery.Courier`, which sends each when it is due, one at
   a time, from a task ``async with FakeGraph(...)`` starts; or, in manual mode, when
   the test calls :meth:`FakeGraph.deliver_next`.

Notifications go to a :class:`~callflow.Client` directly (``receive_notifications``), to a
webhook URL over HTTP (a JSON POST), or to any async callable. Every request the fake got
is logged in :attr:`FakeGraph.requests` and every notification it sent in
:attr:`FakeGraph.sent`, with what became of it, for assertions.

All waiting goes through the clock: on a :class:`~callflow.testing.VirtualClock` with
autojump, a 60 s ring timeout takes no real time.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Literal

import anyio
import anyio.abc
import attrs
import httpx

from .._client import GRAPH_BASE_URL
from .._clock import Clock, SystemClock
from .._exceptions import CallflowError
from .._ids import uuid4_text
from .._tasks import start_background, stop_background
from . import _wire
from ._delivery import Courier, Outgoing, Sent, Target
from ._script import (
    Accepts,
    Answer,
    Declines,
    DelayNotifications,
    DropAfterTaking,
    DropBeforeSending,
    DropNotifications,
    DuplicateNotifications,
    FailAfterTaking,
    Fault,
    HttpFault,
    NotificationFault,
    NotifyBeforeAnswer,
    Quirks,
    Refuse,
    ReorderNotifications,
    SlowAnswer,
    Throttle,
)
from ._wire import Operation

__all__ = ["FakeGraph", "Received", "ScriptsNotUsed", "AfterDelete", "FOLLOW_UP", "CANCELLED_INFO"]

#: Seconds between the operation's end and each notification that follows it.
FOLLOW_UP: Final = 0.05

_INVITE = re.compile(r"(?:/v1\.0|/beta)?/communications/calls/([^/]+)/participants/invite/?")
_PARTICIPANT = re.compile(r"(?:/v1\.0|/beta)?/communications/calls/([^/]+)/participants/([^/]+)/?")

#: What the fake notifies after answering a DELETE with 204: nothing (the default), the
#: ringing invite's operation failed with :data:`CANCELLED_INFO`, or the participant's
#: removal (``deleted`` on ``.../participants/{participantId}``).
AfterDelete = Literal["nothing", "operation_failed", "roster_removal"]
_AFTER_DELETE: Final = ("nothing", "operation_failed", "roster_removal")

#: The ``resultInfo`` of an operation whose ringing participant was deleted, when
#: ``after_delete="operation_failed"``: SIP's 487 (Request Terminated).
CANCELLED_INFO: Final = {
    "code": 487,
    "subcode": 0,
    "message": "The invitation was cancelled before it was answered.",
}


class ScriptsNotUsed(CallflowError, AssertionError):
    """Scripted answers were never used: nobody with those identity ids was invited.

    Raised when a running :class:`FakeGraph` exits (so a test using the ``fake_graph``
    fixture fails at teardown, as pytest-httpx does with unrequested responses), or by
    :meth:`FakeGraph.check_all_used`. Opt out with ``assert_all_used=False``.
    """


_ERROR_CODES: Final = {
    400: "BadRequest",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@attrs.frozen(kw_only=True)
class Received:
    """One request the fake service got, and what it did with it.

    Attributes:
        method: the HTTP method.
        url: the full URL.
        call_id: the ``{id}`` of an invite or participant path, else None.
        body: the JSON body (None when it was not JSON).
        authorized: whether it carried a bearer token (the token is never kept).
        at: when it came, on the fake's clock.
        answer: what the fake answered: a status (``"200"``, ``"429"``) or the
            exception it raised (``"ConnectError"``, ``"ReadError"``).
        operation_id: the operation it created, when the invite was taken.
        participant_id: the ``{participantId}`` of a DELETE.

    """

    method: str
    url: str
    call_id: str | None
    body: Any
    authorized: bool
    at: float
    answer: str
    operation_id: str | None = None
    participant_id: str | None = None

    @property
    def taken(self) -> bool:
        """True when the service took the invite (its operation runs and notifies)."""
        return self.operation_id is not None


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, RecursionError):
        return None


def _error(status: int, message: str, *, code: str | None = None) -> httpx.Response:
    code = code or _ERROR_CODES.get(status, "UnknownError")
    return httpx.Response(status, json=_wire.error_body(code, message))


def _problem(body: Any) -> str | None:
    """What the service would refuse in an invite body, or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    participants = body.get("participants")
    if not isinstance(participants, list) or not participants:
        return "participants: at least one participant is required"
    if len(participants) > 5:
        return "participants: at most 5 participants can be invited"
    for i, p in enumerate(participants):
        if not isinstance(p, dict) or not isinstance(p.get("identity"), dict):
            return f"participants[{i}]: an invitationParticipantInfo with an identity is required"
    context = body.get("clientContext")
    if context is not None and (not isinstance(context, str) or len(context) > 256):
        return "clientContext: a string of at most 256 characters"
    return None


def _ids(participant: Mapping[str, Any]) -> set[str]:
    identity = participant.get("identity")
    if not isinstance(identity, Mapping):
        return set()
    return {
        leaf["id"]
        for leaf in identity.values()
        if isinstance(leaf, Mapping) and isinstance(leaf.get("id"), str)
    }


def _selected(only: frozenset[str] | None, label: str) -> bool:
    return only is None or label in only


@attrs.define(kw_only=True)
class _Leg:
    """One invited participant, as the service sees it; its state follows the clock."""

    operation_id: str
    joins_at: float | None  # when it answers; None if it never does
    ends_at: float | None  # when the service ends it unanswered (decline, ring timeout)
    removed_at: float | None = None

    def state(self, now: float) -> str:
        if self.removed_at is not None and now >= self.removed_at:
            return "removed"
        if self.joins_at is not None and now >= self.joins_at:
            return "joined"
        if self.ends_at is not None and now >= self.ends_at:
            return "ended"
        return "ringing"


_Plan = list[tuple[float, str, dict[str, Any]]]


def _disturb(plan: _Plan, faults: Iterable[NotificationFault]) -> tuple[_Plan, bool]:
    """Apply notification faults to an operation's plan; also say if it goes before the answer."""
    faults = list(faults)
    if not faults:
        return plan, False
    for f in faults:
        if isinstance(f, DropNotifications):
            plan = [item for item in plan if not _selected(f.only, item[1])]
    for f in faults:
        if isinstance(f, DuplicateNotifications):
            plan = [
                copy for item in plan for copy in [item] * (2 if _selected(f.only, item[1]) else 1)
            ]
    for f in faults:
        if isinstance(f, ReorderNotifications):
            plan = [
                (t, label, body)
                for t, (_, label, body) in zip([p[0] for p in plan], plan[::-1], strict=True)
            ]
    for f in faults:
        if isinstance(f, DelayNotifications):
            plan = [(t + f.seconds if _selected(f.only, lb) else t, lb, b) for t, lb, b in plan]
    return plan, any(isinstance(f, NotifyBeforeAnswer) for f in faults)


def _bearer(request: httpx.Request) -> bool:
    """Whether the request carries a bearer token (read off the raw headers: cheaper)."""
    for key, value in request.headers.raw:
        if key.lower() == b"authorization":
            return value[:7].lower() == b"bearer "
    return False


def _refused(
    fault: HttpFault | None, request: httpx.Request, log: Callable[[str], None]
) -> httpx.Response | None:
    """The answer of a fault that refuses a request before taking it (POST or DELETE), or None.

    Raises:
        httpx.ConnectError: the fault drops the connection before the request is sent.

    """
    if fault is None:  # no fault queued, the usual case
        return None
    if isinstance(fault, DropBeforeSending):
        log("ConnectError")
        raise httpx.ConnectError("FakeGraph: connection dropped before sending", request=request)
    if isinstance(fault, Throttle):
        log("429")
        response = _error(429, "Too many requests; retry after the time in Retry-After.")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        return response
    if isinstance(fault, Refuse):
        log(str(fault.status))
        return _error(fault.status, fault.message, code=fault.code)
    return None


class _Transport(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeGraph) -> None:
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._fake._handle(request)


class FakeGraph:
    """An in-process calls service for invites: scriptable, faulty on demand, on your clock.

    Use it as an async context manager (it runs its delivery task in a task group)::

        async with FakeGraph(clock=clock) as fake, fake.http_client() as http:
            async with callflow.Client(http, clock=clock) as client:
                fake.deliver_to(client)
                fake.script("+12345678901", Declines(code=603))
                handle = await client.invite(call_id, participants)

    Args:
        clock: where the fake reads the time and waits; a
            :class:`~callflow.testing.VirtualClock` in tests (real time by default).
        deliver_to: where notifications go (see :meth:`deliver_to`); may be set later.
        manual: when True, nothing is delivered until :meth:`deliver_next` (settable).
        quirks: which of the spec's oddities to reproduce (:class:`Quirks`); settable.
        default_answer: what participants with no script do (:class:`Accepts`).
        ring_timeout: seconds after which the service fails an unanswered invite.
        operation_ids: ids to give the next operations, in order; then random ones.
        seed: seeds the random operation ids, so runs are repeatable.
        webhook_client: the ``httpx.AsyncClient`` that POSTs to a webhook URL (one is
            made, and closed on exit, when needed and not given).
        webhook_headers: extra headers for webhook POSTs (such as Authorization).
        after_delete: what is notified after a DELETE's 204 (:data:`AfterDelete`);
            settable. callflow must not depend on any of them.
        assert_all_used: when True, leaving ``async with`` raises :class:`ScriptsNotUsed`
            if a scripted answer was never used (settable; see :meth:`check_all_used`).

    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        deliver_to: Target | None = None,
        manual: bool = False,
        quirks: Quirks | None = None,
        default_answer: Answer | None = None,
        ring_timeout: float = 60.0,
        operation_ids: Iterable[str] = (),
        seed: int = 0,
        webhook_client: httpx.AsyncClient | None = None,
        webhook_headers: Mapping[str, str] | None = None,
        after_delete: AfterDelete = "nothing",
        assert_all_used: bool = True,
    ) -> None:
        if after_delete not in _AFTER_DELETE:
            raise ValueError(
                f"after_delete must be one of {', '.join(_AFTER_DELETE)}, not {after_delete!r}"
            )
        if not ring_timeout > 0:
            raise ValueError(
                f"ring_timeout must be a positive number of seconds, not {ring_timeout}"
            )
        self.clock: Clock = clock or SystemClock()
        self.quirks = quirks or Quirks()
        self.default_answer: Answer = default_answer or Accepts()
        self.ring_timeout = ring_timeout
        #: Every request the fake got, oldest first.
        self.requests: list[Received] = []
        #: Every operation the fake took, by id.
        self.operations: dict[str, Operation] = {}
        self.after_delete: AfterDelete = after_delete
        self.assert_all_used = assert_all_used
        self._scripts: dict[str, Answer] = {}
        self._used: set[str] = set()
        self._legs: dict[tuple[str, str], _Leg] = {}
        self._http_faults: deque[list[Any]] = deque()
        self._delete_faults: deque[list[Any]] = deque()
        self._note_faults: list[list[Any]] = []
        self._operation_ids = deque(operation_ids)
        self._rng = random.Random(seed)  # noqa: S311 - repeatable ids, not secrets
        self._participant_rng = random.Random(f"participants-{seed}")  # noqa: S311
        self._transport = _Transport(self)
        self._courier = Courier(
            self.clock,
            target=deliver_to,
            manual=manual,
            webhook_client=webhook_client,
            webhook_headers=webhook_headers,
        )
        self._tg: anyio.abc.TaskGroup | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeGraph:
        if self._tg is not None:
            raise CallflowError("this FakeGraph is already running")
        self._tg = await start_background(self._courier.run, "FakeGraph delivery")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        try:
            await stop_background(tg)  # the block's own exception goes on unchanged
        finally:
            await self._courier.aclose()
        if exc_type is None and self.assert_all_used:
            self.check_all_used()
        return None

    def check_all_used(self) -> None:
        """Fail if a scripted answer was never used (nobody with its id was invited).

        Raises:
            ScriptsNotUsed: naming each unused identity id and its answer.

        """
        unused = {k: v for k, v in self._scripts.items() if k not in self._used}
        if unused:
            listed = ", ".join(f"{k!r} ({v!r})" for k, v in sorted(unused.items()))
            raise ScriptsNotUsed(
                f"FakeGraph: scripted answers were never used: {listed}; nobody with these "
                "identity ids was invited. If that is intended, pass assert_all_used=False "
                "to FakeGraph (or set fake_graph.assert_all_used = False)."
            )

    # -- the API side ---------------------------------------------------------------------

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The httpx transport that answers invite POSTs."""
        return self._transport

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on :attr:`transport`, base URL Graph's v1.0 root.

        Args:
            kwargs: passed on to ``httpx.AsyncClient``.

        Returns:
            A client the caller closes (``async with fake.http_client() as http``).

        """
        return httpx.AsyncClient(transport=self._transport, base_url=GRAPH_BASE_URL, **kwargs)

    def script(self, identity_id: str, answer: Answer) -> None:
        """Say what the participant with this identity id does when invited.

        Args:
            identity_id: a user, application or device id, or a phone number.
            answer: :class:`Accepts`, :class:`Declines` or :class:`NeverAnswers`.

        """
        self._scripts[identity_id] = answer

    def fault(self, *faults: Fault) -> None:
        """Queue faults (see :mod:`callflow.testing._script` for what each does).

        HTTP faults are taken one per POST, in the order given; notification faults
        apply together to each new operation. Each lasts its ``times``.
        """
        for f in faults:
            entry = [f, f.times]
            if isinstance(f, HttpFault):
                self._http_faults.append(entry)
            else:
                self._note_faults.append(entry)

    def fault_deletes(self, *faults: HttpFault) -> None:
        """Queue faults for the DELETEs of participants, one per DELETE, in order.

        :class:`Throttle` (429, nothing removed), :class:`Refuse` (an error, nothing
        removed), :class:`DropBeforeSending` (``httpx.ConnectError``, nothing removed),
        :class:`FailAfterTaking` (removed, but an error answered), :class:`DropAfterTaking`
        (removed, then ``httpx.ReadError``), :class:`SlowAnswer`. Each lasts its ``times``.
        """
        for f in faults:
            if not isinstance(f, HttpFault):
                raise TypeError(f"fault_deletes takes HTTP faults, not {f!r}")
            self._delete_faults.append([f, f.times])

    def participant_state(self, call_id: str, participant_id: str) -> str:
        """Where an invited participant is now, on the fake's clock.

        ``ringing``, ``joined``, ``ended`` (declined or not answered), ``removed``
        (deleted), or ``unknown``.

        Args:
            call_id: the call invited into.
            participant_id: the id the fake gave the participant (the answer's
                ``participants[].id``).

        """
        leg = self._legs.get((call_id, participant_id))
        return "unknown" if leg is None else leg.state(self.clock.now())

    @staticmethod
    def _next(queue: deque[list[Any]]) -> HttpFault | None:
        if not queue:
            return None
        entry = queue[0]
        entry[1] -= 1
        if entry[1] == 0:
            queue.popleft()
        fault: HttpFault = entry[0]
        return fault

    def _next_http_fault(self) -> HttpFault | None:
        return self._next(self._http_faults)

    def _next_notification_faults(self) -> list[NotificationFault]:
        if not self._note_faults:
            return []
        taken = []
        for entry in self._note_faults:
            taken.append(entry[0])
            entry[1] -= 1
        self._note_faults = [e for e in self._note_faults if e[1] > 0]
        return taken

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        at = self.clock.now()
        body = _json(await request.aread())
        match = _INVITE.fullmatch(request.url.path)
        call_id = match.group(1) if match else None
        bearer = _bearer(request)

        def log(answer: str, operation: Operation | None = None) -> None:
            self.requests.append(
                Received(
                    method=request.method,
                    url=str(request.url),
                    call_id=call_id,
                    body=body,
                    authorized=bearer,
                    at=at,
                    answer=answer,
                    operation_id=None if operation is None else operation.id,
                )
            )

        deleting = _PARTICIPANT.fullmatch(request.url.path) if match is None else None
        if request.method == "DELETE" and deleting is not None:
            return await self._delete(request, deleting.group(1), deleting.group(2), at, bearer)
        if request.method != "POST" or call_id is None:
            log("404")
            return _error(404, f"no such endpoint: {request.method} {request.url.path}")
        fault = self._next_http_fault()
        refused = _refused(fault, request, log)
        if refused is not None:
            return refused
        problem = _problem(body)
        if problem is not None:
            log("400")
            return _error(400, problem)
        operation, early = self._take(call_id, body, at)
        for item in early:
            await self._courier.send(item)
        if isinstance(fault, FailAfterTaking):
            log(str(fault.status), operation)
            return _error(fault.status, "The service did not answer in time.")
        if isinstance(fault, DropAfterTaking):
            log("ReadError", operation)
            raise httpx.ReadError(
                "FakeGraph: connection dropped after the invite was taken", request=request
            )
        if isinstance(fault, SlowAnswer):
            await self.clock.sleep(fault.delay)
        log("200", operation)
        location = f"{GRAPH_BASE_URL}/communications/calls/{call_id}/operations/{operation.id}"
        return httpx.Response(
            200,
            headers={"Location": location},
            json=_wire.response_body(operation, self.quirks),
        )

    async def _delete(
        self, request: httpx.Request, call_id: str, participant_id: str, at: float, bearer: bool
    ) -> httpx.Response:
        """``DELETE .../calls/{call_id}/participants/{participant_id}``."""

        def log(answer: str, operation_id: str | None = None) -> None:
            self.requests.append(
                Received(
                    method="DELETE",
                    url=str(request.url),
                    call_id=call_id,
                    body=None,
                    authorized=bearer,
                    at=at,
                    answer=answer,
                    operation_id=operation_id,
                    participant_id=participant_id,
                )
            )

        fault = self._next(self._delete_faults)
        refused = _refused(fault, request, log)
        if refused is not None:
            return refused
        leg = self._legs.get((call_id, participant_id))
        state = "unknown" if leg is None else leg.state(at)
        if leg is None or state not in ("ringing", "joined"):
            log("404")
            return _error(404, f"participant {participant_id} is not in call {call_id} ({state})")
        leg.removed_at = at
        await self._after_delete(call_id, participant_id, leg, ringing=state == "ringing", at=at)
        if isinstance(fault, FailAfterTaking):
            log(str(fault.status), leg.operation_id)
            return _error(fault.status, "The service did not answer in time.")
        if isinstance(fault, DropAfterTaking):
            log("ReadError", leg.operation_id)
            raise httpx.ReadError("FakeGraph: connection dropped after the DELETE", request=request)
        if isinstance(fault, SlowAnswer):
            await self.clock.sleep(fault.delay)
        log("204", leg.operation_id)
        return httpx.Response(204)

    async def _after_delete(
        self, call_id: str, participant_id: str, leg: _Leg, *, ringing: bool, at: float
    ) -> None:
        """Stop a ringing participant's planned notifications; plan what follows the 204."""
        operation = self.operations[leg.operation_id]
        if ringing:
            others = [
                other
                for (c, _), other in self._legs.items()
                if c == call_id and other.operation_id == leg.operation_id
            ]
            if all(other.state(at) in ("removed", "ended") for other in others):
                self._courier.withdraw(leg.operation_id, after=at)
        note: tuple[str, dict[str, Any]] | None = None
        if self.after_delete == "operation_failed" and ringing:
            note = (
                "operation",
                _wire.operation_notification(operation, self.quirks, result_info=CANCELLED_INFO),
            )
        elif self.after_delete == "roster_removal":
            note = (
                "participant_removed",
                _wire.participant_removed_notification(call_id, participant_id),
            )
        if note is not None:
            self._courier.plan(
                Outgoing(
                    label=note[0],
                    body=note[1],
                    due=at + FOLLOW_UP,
                    operation_id=operation.id,
                    call_id=call_id,
                )
            )

    def _take(
        self, call_id: str, body: Mapping[str, Any], at: float
    ) -> tuple[Operation, list[Outgoing]]:
        """Create the operation and plan its notifications; return those due before the answer."""
        if self._tg is None and not self._courier.manual:
            raise CallflowError(
                "FakeGraph is not running: use `async with FakeGraph(...)`, or manual=True"
            )
        participants = tuple(body["participants"])
        first = participants[0]
        replaces, moved = first.get("replacesCallId"), first.get("participantId")
        if replaces:
            participants = participants[:1]  # the service reads only the first
        op_id = self._operation_ids.popleft() if self._operation_ids else self._random_id()
        operation = Operation(
            id=op_id,
            call_id=call_id,
            client_context=body.get("clientContext"),
            participants=participants,
            kind=("move_meeting" if moved else "replace_p2p") if replaces else "invite",
            replaces_call_id=replaces,
            participant_id=moved if replaces else None,
            taken_at=at,
            participant_ids=[self._random_id(self._participant_rng) for _ in participants],
        )
        self.operations[op_id] = operation
        answers = [self._answer_for(p) for p in participants]
        for answer, participant_id in zip(answers, operation.participant_ids, strict=True):
            assert participant_id is not None
            joins = at + answer.after if isinstance(answer, Accepts) else None
            ends = None if joins is not None else at + self._ends_after(answer)
            self._legs[(call_id, participant_id)] = _Leg(
                operation_id=op_id, joins_at=joins, ends_at=ends
            )
        plan, before = _disturb(self._plan(operation, answers), self._next_notification_faults())
        outgoing = [
            Outgoing(
                label=label,
                body=note,
                due=at if before else at + offset,
                operation_id=op_id,
                call_id=call_id,
            )
            for offset, label, note in plan
        ]
        if before:
            return operation, outgoing
        for item in outgoing:
            self._courier.plan(item)
        return operation, []

    def _random_id(self, rng: random.Random | None = None) -> str:
        return uuid4_text((rng or self._rng).getrandbits(128))

    def _ends_after(self, answer: Answer) -> float:
        return answer.after if isinstance(answer, Declines) else self.ring_timeout

    def _answer_for(self, participant: Mapping[str, Any]) -> Answer:
        if not self._scripts:
            return self.default_answer
        for identity_id in sorted(_ids(participant)):
            answer = self._scripts.get(identity_id)
            if answer is not None:
                self._used.add(identity_id)
                return answer
        return self.default_answer

    def _plan(self, op: Operation, answers: list[Answer]) -> _Plan:
        """What the service sends for ``op``, whose participants answer as ``answers``.

        Returns:
            ``(seconds after taking it, label, body)`` for each notification.

        """
        quirks = self.quirks
        refusal = next((a for a in answers if not isinstance(a, Accepts)), None)
        if refusal is not None:
            when = self._ends_after(refusal)
            info = {"code": refusal.code, "subcode": refusal.subcode, "message": refusal.message}
            return [(when, "operation", _wire.operation_notification(op, quirks, result_info=info))]
        when = max(a.after for a in answers if isinstance(a, Accepts))
        plan: _Plan = [
            (when, "operation", _wire.operation_notification(op, quirks)),
            (when + FOLLOW_UP, "roster", _wire.roster_notification(op, quirks)),
        ]
        original = op.replaces_call_id
        if original is not None and op.participant_id is not None:
            plan.append(
                (
                    when + 2 * FOLLOW_UP,
                    "participant_removed",
                    _wire.participant_removed_notification(original, op.participant_id),
                )
            )
            plan.append(
                (
                    when + 3 * FOLLOW_UP,
                    "source_roster",
                    _wire.source_roster_notification(original, op.participant_id, op.participants),
                )
            )
        elif original is not None:
            plan.append(
                (
                    when + 2 * FOLLOW_UP,
                    "original_terminated",
                    _wire.call_terminated_notification(original, quirks),
                )
            )
            plan.append(
                (
                    when + 3 * FOLLOW_UP,
                    "original_deleted",
                    _wire.call_deleted_notification(original),
                )
            )
        return plan

    # -- the callback side ----------------------------------------------------------------

    def deliver_to(self, target: Target | None) -> None:
        """Say where notifications go from now on.

        Args:
            target: a :class:`~callflow.Client` (or anything with an async
                ``receive_notifications(body)``), a webhook URL (POSTed as JSON), an
                async callable taking the body, or None to send them nowhere (they are
                still logged in :attr:`sent`).

        """
        self._courier.target = target

    @property
    def sent(self) -> list[Sent]:
        """Every notification the fake sent, oldest first, with what became of it."""
        return self._courier.sent

    @property
    def manual(self) -> bool:
        """When True, notifications wait in :attr:`pending` for :meth:`deliver_next`."""
        return self._courier.manual

    @manual.setter
    def manual(self, value: bool) -> None:
        self._courier.manual = value

    @property
    def pending(self) -> tuple[Outgoing, ...]:
        """The notifications planned and not yet sent, in the order they will be sent."""
        return self._courier.pending

    async def deliver_next(self) -> Sent:
        """Send the next pending notification now, and return what became of it.

        On a :class:`~callflow.testing.VirtualClock` the time first moves on to the
        notification's due time (it never goes back).

        Raises:
            CallflowError: nothing is pending.

        """
        return await self._courier.deliver_next()

    async def deliver_all(self) -> list[Sent]:
        """Send every pending notification in order (see :meth:`deliver_next`)."""
        return await self._courier.deliver_all()

    async def drain(self) -> None:
        """Wait until every planned notification has been sent.

        In automatic mode this waits on the fake's clock; in manual mode it is
        :meth:`deliver_all`.

        Raises:
            CallflowError: automatic mode, and the fake is not running.

        """
        if self._tg is None and not self.manual:
            raise CallflowError("FakeGraph is not running: use `async with FakeGraph(...)`")
        await self._courier.drain()

    def __repr__(self) -> str:
        mode = "manual" if self.manual else ("running" if self._tg is not None else "stopped")
        return (
            f"<FakeGraph {mode} requests={len(self.requests)} sent={len(self.sent)} "
            f"pending={len(self._courier)}>"
        )
