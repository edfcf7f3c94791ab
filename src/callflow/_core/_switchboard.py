"""The switchboard: many invites, and every notification routed to the one it concerns.

Theory of operation
-------------------
A :class:`Switchboard` holds invites in three indexes: by operation id, by clientContext
(the correlation key, unique among the invites it holds), and by call id (each invite's
``call_id`` and its ``replacesCallId``). A notification is routed by its content:

* an operation update goes to the invite with its operation id, else its clientContext
  (the spec's completion of example 2 has ``"id": null``);
* a roster update, a call's end or a participant's deletion goes to the invites on that
  call id (example 3's roster names the *replaced* call).

Every notification comes back in the :class:`Receipt` with a :class:`Delivery` saying
what became of it: applied, duplicate, late (its invite had finished or was released),
ignored (a call update that moves nothing), unrecognised, backlogged, or unmatched.
Nothing is dropped in silence.

Notifications that match no invite yet (they can beat the HTTP answer, and even the
``add``) wait in a backlog bounded in count and age. When an invite is added, the backlog
entries for its keys are delivered to it, in arrival order. What leaves the backlog
unclaimed, pushed out by the count limit or aged out, is reported as ``unmatched``.

Deadlines: each non-terminal state has one (:class:`Deadlines`). The switchboard keeps
them in a heap; :meth:`Switchboard.expire` tells the invites whose deadline passed (a
ringing one moves to ``cancelling``, the others fail), and
:meth:`Switchboard.next_deadline` says when to call it next. The switchboard does no I/O
and never sleeps: it is told the time (``at=``), or reads the ``clock`` it was given;
without either, the time is the latest it was told (time stands still until told).
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple, cast

import attrs

from .._exceptions import ConfigurationError, InviteError, NotificationError
from ._invite import Invite
from ._machine import DEADLINES, InviteState
from ._models import type_name
from ._notifications import CommsNotification, NotificationKind, parse_notifications
from ._records import Outcome
from ._strenum import StrEnum

__all__ = ["Switchboard", "Deadlines", "Delivery", "DeliveryOutcome", "Receipt"]


@attrs.frozen(kw_only=True)
class Deadlines:
    """How long an invite may stay in each non-terminal state, in seconds.

    The states and their defaults are the machine's (``_machine.DEADLINES``). The default
    for ``running`` (90 s) is longer than the service's own ring timeout (about 60 s), so
    the service's own ``failed`` is seen rather than pre-empted. ``requested`` covers
    sending, 429 retries, and waiting out a lost answer. When ``requested`` or ``running``
    expires the invite is cancelled (its DELETE sent); ``cancelling`` bounds that: the wait
    for the participant id, and the DELETE's retries.

    Raises:
        ConfigurationError: a deadline that is not a positive number of seconds.
    """

    requested: float = DEADLINES[InviteState.requested]
    running: float = DEADLINES[InviteState.running]
    tearing_down_original: float = DEADLINES[InviteState.tearing_down_original]
    cancelling: float = DEADLINES[InviteState.cancelling]

    def __attrs_post_init__(self) -> None:
        for state in DEADLINES:
            if not getattr(self, state.value) > 0:
                raise ConfigurationError(
                    f"Deadlines.{state.value}: must be a positive number of seconds"
                )

    def for_state(self, state: InviteState) -> float | None:
        """Seconds allowed in ``state``; None for a state with no deadline (terminal)."""
        return getattr(self, state._value_) if state in DEADLINES else None


# One field per state the machine gives a deadline (``_machine.DEADLINES``), no other:
# a state declared with a deadline but missing here fails the import.
if {f.name for f in attrs.fields(Deadlines)} != {s.value for s in DEADLINES}:  # pragma: no cover
    raise ImportError("Deadlines must have one field per state in _machine.DEADLINES")


class DeliveryOutcome(StrEnum):
    """What became of one notification (see the module docstring)."""

    applied = "applied"
    duplicate = "duplicate"
    late = "late"
    ignored = "ignored"
    unrecognised = "unrecognised"
    backlogged = "backlogged"
    unmatched = "unmatched"


class Delivery(NamedTuple):
    """One notification's fate (an immutable record; one is made per notification).

    Attributes:
        notification: the notification.
        outcome: a :class:`DeliveryOutcome`.
        invite: the invite it went to, if any.
        moved: True when it changed that invite's state.
        reason: in words, why this outcome.

    """

    notification: CommsNotification
    outcome: DeliveryOutcome
    invite: Invite | None = None
    moved: bool = False
    reason: str = ""

    @property
    def client_context(self) -> str | None:
        """The clientContext of the invite it went to."""
        return None if self.invite is None else self.invite.client_context


@attrs.frozen
class Receipt:
    """What a call to the switchboard did.

    Attributes:
        deliveries: what became of each notification, in order (a notification that
            concerned two invites has two).
        timed_out: the invites whose deadline passed during the call.

    """

    deliveries: tuple[Delivery, ...] = ()
    timed_out: tuple[Invite, ...] = ()

    def of(self, outcome: DeliveryOutcome) -> tuple[Delivery, ...]:
        """The deliveries with that outcome."""
        return tuple(d for d in self.deliveries if d.outcome is outcome)

    @property
    def moved(self) -> tuple[Invite, ...]:
        """The invites whose state changed, each once, in order of first change."""
        seen: dict[int, Invite] = {}
        for d in self.deliveries:
            if d.moved and d.invite is not None:
                seen.setdefault(id(d.invite), d.invite)
        for invite in self.timed_out:
            seen.setdefault(id(invite), invite)
        return tuple(seen.values())

    def __add__(self, other: Receipt) -> Receipt:
        return Receipt(self.deliveries + other.deliveries, self.timed_out + other.timed_out)


_EMPTY: Final = Receipt()


#: An invite's outcome for a notification: the delivery's outcome, and its reason when the
#: invite's state did not change.
_OUTCOMES: Final = {
    outcome: (DeliveryOutcome(outcome._value_), outcome._value_)
    for outcome in (Outcome.applied, Outcome.duplicate, Outcome.late)
}

# Enum members read on the hot path, bound once: on Python 3.11 every attribute read
# through an enum class goes through EnumType's __getattr__ hook, ~10x a global's cost.
_KIND_OPERATION: Final = NotificationKind.operation
_KIND_UNRECOGNISED: Final = NotificationKind.unrecognised
_KIND_CALL_UPDATED: Final = NotificationKind.call_updated
_NOT_MINE: Final = Outcome.not_mine
#: Makes a :class:`Delivery` without the named tuple's keyword-reading ``__new__`` (one is
#: made per invite a notification reaches); every field is given, in order.
_new_delivery: Final = tuple.__new__

_Key = tuple[str, str]
#: A deadline heap entry: [deadline, seq, invite (None once stale), state]. A list, so the
#: heap compares entries in C (deadline, then the unique seq) and an entry is marked
#: stale in place.
_Entry = list[Any]
#: Indexes are copied smaller only once they have held at least this many invites.
_SHRINK_FROM: Final = 256
_MOVES: Final = {(a, b): f"{a.value} -> {b.value}" for a in InviteState for b in InviteState}


@attrs.define(eq=False)
class _Waiting:
    notification: CommsNotification
    arrived: float
    keys: tuple[_Key, ...]
    seq: int


def unrecognised(n: CommsNotification) -> Delivery:
    """The delivery of a notification callflow does not track (the store engine's too)."""
    reason = n.reason or "not an invite operation, roster, call or participant"
    return Delivery(notification=n, outcome=DeliveryOutcome.unrecognised, reason=reason)


def ignored(n: CommsNotification) -> Delivery:
    """The delivery of a call update that moves no invite (the store engine's too)."""
    reason = "a call update that is not its end moves no invite"
    return Delivery(notification=n, outcome=DeliveryOutcome.ignored, reason=reason)


def _keys_of(n: CommsNotification) -> tuple[_Key, ...]:
    if n.kind is NotificationKind.operation:
        keys: list[_Key] = []
        if n.operation_id:
            keys.append(("op", n.operation_id))
        if n.client_context:
            keys.append(("cc", n.client_context))
        return tuple(keys)
    return (("call", n.call_id),) if n.call_id else ()


def _parsed(body: object) -> Sequence[CommsNotification]:
    """``body`` as notifications already parsed, or a NotificationError naming what came."""
    if isinstance(body, (list, tuple)):
        for i, item in enumerate(body):
            if not isinstance(item, CommsNotification):
                raise NotificationError(
                    "expected a commsNotifications body (bytes, text or a mapping) or a "
                    f"sequence of CommsNotification, got a {type(body).__name__} holding "
                    f"{type_name(item)}",
                    path=f"$[{i}]",
                )
        return body
    raise NotificationError(
        "expected a commsNotifications body (bytes, text or a mapping) or a sequence of "
        f"CommsNotification, got {type_name(body)}"
    )


class Switchboard:
    """Holds many invites and routes each notification to the invite it concerns.

    Args:
        deadlines: how long each state may last (:class:`Deadlines`).
        backlog_limit: how many unmatched notifications may wait for their invite.
        backlog_max_age: how many seconds one may wait.
        remember_released: how many released invites' keys are remembered, so their
            late notifications are reported as late rather than unmatched.
        clock: where the time is read when a call gives no ``at``; None (the default)
            means the latest time a call gave (0.0 before any).

    """

    def __init__(
        self,
        *,
        deadlines: Deadlines | None = None,
        backlog_limit: int = 1000,
        backlog_max_age: float = 60.0,
        remember_released: int = 10_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if backlog_limit < 0 or backlog_max_age < 0:
            raise ConfigurationError("backlog_limit and backlog_max_age must not be negative")
        self.deadlines = deadlines or Deadlines()
        self.backlog_limit = backlog_limit
        self.backlog_max_age = backlog_max_age
        self.clock = clock
        self._told = 0.0
        self._by_context: dict[str, Invite] = {}
        self._by_operation: dict[str, Invite] = {}
        self._by_call: dict[str, dict[Invite, None]] = {}  # ordered, O(1) removal
        # The deadline index: each held unfinished invite's entry [deadline, seq, invite,
        # state], and a heap of the same entries. An entry is stale once its invite slot
        # is None: set when the invite is rescheduled or unscheduled (lazy deletion; the
        # heap is compacted when stale entries outnumber live ones).
        self._deadline: dict[Invite, _Entry] = {}
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._backlog: OrderedDict[int, _Waiting] = OrderedDict()
        self._backlog_index: dict[_Key, dict[int, _Waiting]] = {}
        self._released: OrderedDict[_Key, None] = OrderedDict()
        self._remember = remember_released
        self._own_deadlines: dict[str, Deadlines] = {}
        self._peak = _SHRINK_FROM  # the most invites held since the indexes were last copied

    def _now(self, at: float | None) -> float:
        """The time of a call: ``at``, else the clock, else the latest time told."""
        if at is not None:
            self._told = at
            return at
        return self._told if self.clock is None else self.clock()

    # -- invites ------------------------------------------------------------------------

    def add(
        self,
        invite: Invite,
        *,
        at: float | None = None,
        deadlines: Deadlines | None = None,
        before_post: bool = False,
    ) -> Receipt:
        """Hold ``invite`` and deliver any backlogged notifications that concern it.

        Args:
            invite: the invite.
            at: the time now; the ``clock`` is read when None.
            deadlines: this invite's own deadlines, instead of the switchboard's.
            before_post: the invite's POST has not left yet (the Client registers every
                invite before sending it). Then nothing waiting in the backlog can be
                news about it: the service reports on an operation only after the POST
                that started it. The backlog entries for its keys leave the backlog as
                ``unmatched`` (older than its POST) instead of being applied to it.

        Raises:
            InviteError: another in-flight invite already has this clientContext.

        """
        context = invite.client_context
        held = self._by_context.get(context)
        if held is not None:
            if held is invite:
                return _EMPTY
            if not held.is_finished:
                raise InviteError(
                    f"clientContext {context!r} is already used by an invite in flight "
                    f"({held.state}); clientContext is the correlation key and must be unique"
                )
            self.release(held)
        now = self._now(at)
        self._by_context[context] = invite
        if len(self._by_context) > self._peak:
            self._peak = len(self._by_context)
        if deadlines is not None:
            self._own_deadlines[context] = deadlines
        if invite.operation_id:
            self._by_operation[invite.operation_id] = invite
        for call_id in self._calls_of(invite):
            self._by_call.setdefault(call_id, {})[invite] = None
        self._schedule(invite, now)
        if not self._backlog:
            return _EMPTY
        if before_post:
            return self._drop_stale(invite)
        return self._claim_backlog(invite, now)

    def get(self, client_context: str) -> Invite | None:
        """The invite held with that clientContext, if any."""
        return self._by_context.get(client_context)

    def __len__(self) -> int:
        return len(self._by_context)

    def __iter__(self) -> Iterator[Invite]:
        return iter(list(self._by_context.values()))

    def __contains__(self, invite: object) -> bool:
        return isinstance(invite, Invite) and self._by_context.get(invite.client_context) is invite

    def release(self, invite: Invite) -> None:
        """Stop holding ``invite``; its later notifications are reported as late."""
        context = invite.client_context
        if self._by_context.get(context) is not invite:
            return
        del self._by_context[context]
        self._own_deadlines.pop(context, None)
        keys: list[_Key] = [("cc", context)]
        if invite.operation_id and self._by_operation.get(invite.operation_id) is invite:
            del self._by_operation[invite.operation_id]
            keys.append(("op", invite.operation_id))
        for call_id in self._calls_of(invite):
            held = self._by_call.get(call_id)
            if held is not None:
                held.pop(invite, None)
                if not held:
                    del self._by_call[call_id]
                    keys.append(("call", call_id))
        self._unschedule(invite)
        self._compact()
        for key in keys:
            self._released[key] = None
            self._released.move_to_end(key)
        while len(self._released) > self._remember:
            self._released.popitem(last=False)
        held_now = len(self._by_context)
        if held_now * 4 <= self._peak:
            self._shrink(held_now)

    def _shrink(self, held_now: int) -> None:
        """Give back the memory of indexes that shrank to a quarter of their peak.

        A dict keeps its table's size when entries leave, so after a burst of 100,000
        invites is released the indexes would hold megabytes for nothing. Copying them
        (order kept) when they are a quarter of their peak costs O(1) per release, amortised.
        """
        self._by_context = dict(self._by_context)
        self._by_operation = dict(self._by_operation)
        self._deadline = dict(self._deadline)
        self._peak = max(held_now, _SHRINK_FROM)

    def release_finished(self) -> tuple[Invite, ...]:
        """Release every finished invite; returns them."""
        done = tuple(i for i in self._by_context.values() if i.is_finished)
        for invite in done:
            self.release(invite)
        return done

    # -- notifications ------------------------------------------------------------------

    def receive(
        self,
        body: bytes | str | Mapping[str, Any] | Sequence[CommsNotification],
        *,
        at: float | None = None,
    ) -> Receipt:
        """Route a webhook body, or notifications already parsed, to their invites.

        Args:
            body: a ``commsNotifications`` body (bytes, text or mapping), or a sequence
                of :class:`CommsNotification`.
            at: the time of arrival; the ``clock`` is read when None.

        Returns:
            A :class:`Receipt` saying what went where, including what left the backlog.

        Raises:
            NotificationError: the body is malformed; nothing was applied.

        """
        if isinstance(body, (bytes, bytearray, memoryview, str, Mapping)):
            notifications: Sequence[CommsNotification] = parse_notifications(body)
        else:
            notifications = _parsed(body)
        for n in notifications:
            n.build_models()  # the one rule; a malformed body raises before any is routed
        now = self._now(at)
        deliveries: list[Delivery] = []
        for n in notifications:
            self._route(n, now, deliveries)
        receipt = Receipt(tuple(deliveries))
        if self._backlog:
            receipt = receipt + self._age_backlog(now)
        return receipt

    def receive_in_parts(
        self,
        notifications: Sequence[CommsNotification],
        *,
        work_per_part: int,
        at: float | None = None,
    ) -> Iterator[Receipt]:
        """Route notifications like :meth:`receive`, one bounded part after another.

        The work of a notification is how many invites it is offered to (a roster goes to
        every invite on its call). Each part does at most ``work_per_part`` of it (a
        notification that alone does more is a part of its own), so an engine that yields
        to its event loop between parts is never blocked for a whole big body. Parts are
        routed when asked for, each at its own time (``at``, else the clock's).

        Args:
            notifications: parsed notifications, in arrival order.
            work_per_part: the most (invite, notification) offers in one part.
            at: the time of arrival; the ``clock`` is read per part when None.

        Yields:
            A :class:`Receipt` per part; the last one includes what left the backlog.

        Raises:
            NotificationError: a notification is malformed; nothing was applied.

        """
        for n in notifications:
            n.build_models()
        deliveries: list[Delivery] = []
        work = 0
        now = self._now(at)
        for n in notifications:
            cost = self._fan_out(n)
            if work and work + cost > work_per_part:
                yield Receipt(tuple(deliveries))
                deliveries, work = [], 0
                now = self._now(at)
            self._route(n, now, deliveries)
            work += cost
        receipt = Receipt(tuple(deliveries))
        yield receipt + self._age_backlog(now) if self._backlog else receipt

    def _fan_out(self, n: CommsNotification) -> int:
        """How many invites ``n`` will be offered to (at least 1: routing it is work)."""
        if n.kind is NotificationKind.operation or not n.call_id:
            return 1
        return max(1, len(self._by_call.get(n.call_id, ())))

    def _route(self, n: CommsNotification, now: float, out: list[Delivery]) -> None:
        kind = n.kind
        if kind is _KIND_UNRECOGNISED:
            out.append(unrecognised(n))
            return
        matched = False
        if kind is _KIND_OPERATION:
            invite = self._by_operation.get(n.operation_id) if n.operation_id else None
            # A released invite's operation stays its own, even when a newer invite reuses
            # the clientContext: a redelivery of the old news must not move the new one.
            if invite is None and n.client_context and ("op", n.operation_id) not in self._released:
                invite = self._by_context.get(n.client_context)
            matched = invite is not None and self._offer(invite, n, now, out) is not _NOT_MINE
        elif n.call_id:
            offer = self._offer
            for invite in tuple(self._by_call.get(n.call_id, ())):
                if offer(invite, n, now, out) is not _NOT_MINE:
                    matched = True
        if matched:
            return
        if kind is _KIND_CALL_UPDATED:
            out.append(ignored(n))
            return
        keys = _keys_of(n)
        if any(key in self._released for key in keys):
            out.append(
                Delivery(
                    notification=n,
                    outcome=DeliveryOutcome.late,
                    reason="its invite was released",
                )
            )
            return
        out.extend(self._to_backlog(n, keys, now))

    def _offer(
        self, invite: Invite, n: CommsNotification, now: float, out: list[Delivery]
    ) -> Outcome:
        before = invite.state
        known_operation = invite.operation_id
        outcome = invite.offer(n, at=now)
        if outcome is _NOT_MINE:
            return outcome
        if known_operation is None and invite.operation_id:
            self._by_operation.setdefault(invite.operation_id, invite)
        after = invite.state
        delivered, said = _OUTCOMES[outcome]
        if after is before:
            out.append(_new_delivery(Delivery, (n, delivered, invite, False, said)))
        else:
            self._schedule(invite, now)
            out.append(_new_delivery(Delivery, (n, delivered, invite, True, _MOVES[before, after])))
        return outcome

    def note_response(self, invite: Invite, *, at: float | None = None) -> None:
        """Tell the switchboard that ``invite`` took an HTTP answer (or a lost one).

        Indexes its operation id and restarts its deadline if its state changed.
        """
        if invite not in self:
            return  # released (or never added): it has no deadline here
        if invite.operation_id:
            self._by_operation.setdefault(invite.operation_id, invite)
        self._schedule(invite, self._now(at))

    # -- deadlines ------------------------------------------------------------------------

    def deadline_of(self, invite: Invite) -> float | None:
        """When ``invite``'s current state times out, or None (finished, or not held)."""
        entry = self._deadline.get(invite)
        return None if entry is None else entry[0]

    def _schedule(self, invite: Invite, now: float) -> None:
        """Give the invite its state's deadline, unless it already has this state's one."""
        state = invite.state
        entry = self._deadline.get(invite)
        if entry is not None and entry[3] is state:
            return  # same state as when its deadline was set
        if state not in DEADLINES:  # terminal: nothing to time out (see _unschedule)
            if entry is not None:
                del self._deadline[invite]
                entry[2] = None
            return
        own = self._own_deadlines.get(invite.client_context) if self._own_deadlines else None
        seconds = (own or self.deadlines).for_state(state)
        if entry is not None:
            entry[2] = None  # the old state's deadline is stale
        fresh = [now + cast("float", seconds), next(self._seq), invite, state]
        self._deadline[invite] = fresh
        heapq.heappush(self._heap, fresh)

    def _unschedule(self, invite: Invite) -> None:
        """Take the invite's deadline away: its entry is marked stale, left in the heap.

        Stale entries leave the heap when their time comes (:meth:`expire`) or when
        :meth:`release` compacts it; an invite that finishes costs no heap work here.
        """
        entry = self._deadline.pop(invite, None)
        if entry is not None:
            entry[2] = None

    def _compact(self) -> None:
        """Drop the stale entries once they outnumber the live ones (amortised O(1)).

        Called on release: a released invite must not be held in memory by the heap
        until its old deadline.
        """
        if len(self._heap) > 64 + 2 * len(self._deadline):
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)

    @staticmethod
    def _live(entry: _Entry) -> bool:
        invite: Invite | None = entry[2]
        return invite is not None and not invite.is_finished

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do, or None."""
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        candidates = [heap[0][0]] if heap else []
        if self._backlog:
            oldest = next(iter(self._backlog.values()))
            candidates.append(oldest.arrived + self.backlog_max_age)
        return min(candidates) if candidates else None

    def expire(self, *, at: float | None = None) -> Receipt:
        """Fail every invite whose deadline has passed, and age out the backlog.

        Returns:
            The invites that timed out, and the notifications that left the backlog.

        """
        now = self._now(at)
        heap = self._heap
        timed_out: list[Invite] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            invite = entry[2]
            del self._deadline[invite]
            invite.time_out(at=now)
            self._schedule(invite, now)  # requested/running lead to cancelling's deadline
            timed_out.append(invite)
        receipt = Receipt((), tuple(timed_out))
        return receipt + self._age_backlog(now) if self._backlog else receipt

    # -- the backlog ----------------------------------------------------------------------

    @property
    def backlog(self) -> tuple[CommsNotification, ...]:
        """The notifications waiting for their invite, oldest first."""
        return tuple(w.notification for w in self._backlog.values())

    @property
    def backlog_since(self) -> float | None:
        """When the oldest notification in the backlog arrived, or None if it is empty."""
        oldest = next(iter(self._backlog.values()), None)
        return None if oldest is None else oldest.arrived

    def _to_backlog(
        self, n: CommsNotification, keys: tuple[_Key, ...], now: float
    ) -> list[Delivery]:
        out = []
        if not keys or self.backlog_limit == 0:
            return [
                Delivery(
                    notification=n,
                    outcome=DeliveryOutcome.unmatched,
                    reason="no invite matches it and it names nothing one could match later",
                )
            ]
        entry = _Waiting(n, now, keys, next(self._seq))
        self._backlog[entry.seq] = entry
        for key in keys:
            self._backlog_index.setdefault(key, {})[entry.seq] = entry
        out.append(
            Delivery(
                notification=n,
                outcome=DeliveryOutcome.backlogged,
                reason="no invite matches it yet; it waits in the backlog",
            )
        )
        while len(self._backlog) > self.backlog_limit:
            _, oldest = self._backlog.popitem(last=False)
            self._forget(oldest)
            out.append(
                Delivery(
                    notification=oldest.notification,
                    outcome=DeliveryOutcome.unmatched,
                    reason=f"pushed out of a full backlog ({self.backlog_limit} waiting)",
                )
            )
        return out

    def _forget(self, entry: _Waiting) -> None:
        for key in entry.keys:
            waiting = self._backlog_index.get(key)
            if waiting is not None:
                waiting.pop(entry.seq, None)
                if not waiting:
                    del self._backlog_index[key]

    def _age_backlog(self, now: float) -> Receipt:
        limit = now - self.backlog_max_age
        out = []
        while self._backlog:
            oldest = next(iter(self._backlog.values()))
            if oldest.arrived > limit:
                break
            self._backlog.popitem(last=False)
            self._forget(oldest)
            out.append(
                Delivery(
                    notification=oldest.notification,
                    outcome=DeliveryOutcome.unmatched,
                    reason=f"no invite claimed it within {self.backlog_max_age:g} s",
                )
            )
        return Receipt(tuple(out)) if out else _EMPTY

    def _waiting_for(self, invite: Invite) -> list[_Waiting]:
        """The backlog entries under any of the invite's keys, in arrival order."""
        keys: list[_Key] = [("cc", invite.client_context)]
        if invite.operation_id:
            keys.append(("op", invite.operation_id))
        keys.extend(("call", c) for c in self._calls_of(invite))
        return sorted(
            {w.seq: w for k in keys for w in self._backlog_index.get(k, {}).values()}.values(),
            key=lambda w: w.seq,
        )

    def _drop_stale(self, invite: Invite) -> Receipt:
        out = []
        for entry in self._waiting_for(invite):
            del self._backlog[entry.seq]
            self._forget(entry)
            out.append(
                Delivery(
                    notification=entry.notification,
                    outcome=DeliveryOutcome.unmatched,
                    reason=(
                        f"it arrived before invite {invite.invite_id} was registered, so "
                        "before its POST: it is not news about that invite"
                    ),
                )
            )
        return Receipt(tuple(out)) if out else _EMPTY

    def _claim_backlog(self, invite: Invite, now: float) -> Receipt:
        waiting = self._waiting_for(invite)
        out: list[Delivery] = []
        for entry in waiting:
            if self._offer(invite, entry.notification, now, out) is not Outcome.not_mine:
                del self._backlog[entry.seq]
                self._forget(entry)
        return Receipt(tuple(out)) if out else _EMPTY

    @staticmethod
    def _calls_of(invite: Invite) -> tuple[str, ...]:
        original = invite.replaces_call_id
        return (invite.call_id, original) if original else (invite.call_id,)

    def __repr__(self) -> str:
        return f"<Switchboard invites={len(self)} backlog={len(self._backlog)}>"
