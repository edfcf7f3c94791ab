"""The store-driven engine: a :class:`~callflow.Client` whose invites live in a Store.

Theory of operation
-------------------
With ``Client(store=...)`` the store is the truth and this instance keeps a cache. An
invite's truth is the fold of its stored inputs, in the store's order, through the
deterministic core (:func:`callflow.replay`'s feed). The cache holds, per invite id, the
folded :class:`~callflow.Invite` and ``count``, how many stored inputs it folds.

Applying an input (the POST's answer, a notification, a deadline) is one step under the
invite's lock in this process:

1. fold it into a *copy* of the cached invite;
2. ``store.append(id, fingerprint, event, snapshot=<the copy's state, version count+1>)``:
   atomic and deduplicated by the fingerprint, so the same notification delivered to two
   instances at once is appended once;
3. ``new and saved``: nothing came in between, the copy is the truth (one round trip);
   ``not new``: a duplicate; ``new, not saved``: another instance appended meanwhile, so
   the inputs after ``count`` are read and folded in order, and the snapshot saved.

A kept snapshot is published to the instances watching the invite (the one that
registered it, and those that attached to it); their subscriber task hears it and, for
an invite it holds a handle of, folds the new inputs and wakes the waiters: a push, not
a poll. Deadlines are the store's (:meth:`~callflow._store.Store.claim_due` is a lease
claimed by one instance); the claim loop wakes for the deadlines this instance set, and
every :data:`POLL` seconds for the others'. A finished invite keeps its routes for the
client's ``release_after`` (so the roster that follows a completion still finds it) as
one more deadline; when that one is claimed the invite is released (its clientContext
free again, its record kept :data:`RECORD_TTL` seconds for late notifications).

The POST is sent once, by the instance that registered the invite. An instance that dies
before its answer leaves the invite ``requested`` with no answer: like a lost answer, it
waits for a notification carrying its clientContext, and its deadline fails it.

Time is wall-clock time (:class:`WallClock`) when no clock is given: the deadlines in a
shared store must mean the same on every machine.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import heapq
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import attrs

from ._clock import Clock
from ._core._invite import Invite
from ._core._machine import InviteState
from ._core._notifications import CommsNotification, NotificationKind
from ._core._records import Outcome
from ._core._switchboard import (
    Deadlines,
    Delivery,
    DeliveryOutcome,
    Receipt,
    ignored,
    unrecognised,
)
from ._exceptions import InviteError
from ._handle import InviteHandle
from ._store import (
    ClientContextInFlight,
    Snapshot,
    Store,
    StoreError,
    UnknownInvite,
    call_key,
    client_context_key,
    operation_key,
)
from ._trace import _feed, replay

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["StoreEngine", "WallClock", "POLL", "LEASE", "RECORD_TTL", "fingerprint_of"]

logger = logging.getLogger("callflow")

#: Seconds between two claims of other instances' deadlines.
POLL: Final = 0.5
#: Seconds a claimed deadline is this instance's before another may claim it again.
LEASE: Final = 30.0
#: Seconds a released invite's record stays (its late notifications are "late").
RECORD_TTL: Final = 600.0
#: How many invites without a handle here the cache keeps (least recently used go).
CACHE_LIMIT: Final = 10_000
_OUTCOMES: Final = {
    Outcome.applied: DeliveryOutcome.applied,
    Outcome.duplicate: DeliveryOutcome.duplicate,
    Outcome.late: DeliveryOutcome.late,
}


class WallClock:
    """Wall-clock time (``time.time``) and ``anyio.sleep``: one clock across machines."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait through anyio, so asyncio and trio both work."""
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "WallClock()"


def fingerprint_of(n: CommsNotification) -> str:
    """The store's dedupe key of a notification: its core fingerprint, hashed."""
    text = json.dumps(n.fingerprint, default=str, separators=(",", ":"))
    return "n:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _snapshot(invite: Invite, version: int) -> Snapshot:
    failure = invite.failure
    data = {"failure": failure.describe()} if failure is not None else {}
    return Snapshot(version=version, state=invite.state.value, data=data)


def _fold(invite: Invite, events: Sequence[Mapping[str, Any]]) -> None:
    for event in events:
        if event.get("type") != "invite":
            _feed(invite, event.get("type"), event, float(event["at"]))


async def _sleep_then_set(clock: Clock, seconds: float, event: anyio.Event) -> None:
    await clock.sleep(seconds)
    event.set()


class _Entry:
    __slots__ = ("born", "count", "deadlines", "invite")

    def __init__(self, invite: Invite, count: int, born: float, deadlines: Deadlines) -> None:
        self.invite = invite
        self.count = count
        self.born = born
        self.deadlines = deadlines


class StoreEngine:
    """What a :class:`~callflow.Client` given a store does (see the module docstring).

    Args:
        client: the Client it serves (its clock, deadlines, handles and hooks).
        store: the store.
    """

    def __init__(self, client: Client, store: Store) -> None:
        self.client = client
        self.store = store
        self._cache: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._locks: dict[str, anyio.Lock] = {}
        # operation id -> invite id: an operation is one invite's for good, so the routes
        # this instance learnt spare it the store's lookup (bounded as the cache is)
        self._operations: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._wakeups: list[float] = []
        self._wake: anyio.Event | None = None
        self._open = False

    # -- lifecycle ------------------------------------------------------------------------

    async def enter(self) -> None:
        """Enter the store (before the Client's task group: the store's scopes are outer)."""
        await self.store.__aenter__()
        self._open = True

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the subscriber (subscribed when this returns) and the claim loop in ``tg``."""
        await tg.start(self._subscriber, name="callflow store subscriber")
        tg.start_soon(self._claim_loop, name="callflow store deadlines")

    async def close(self) -> None:
        """Leave the store (after the Client's tasks were cancelled)."""
        if self._open:
            self._open = False
            await self.store.__aexit__(None, None, None)

    def __len__(self) -> int:
        return len(self._cache)

    # -- the cache ------------------------------------------------------------------------

    def _lock(self, invite_id: str) -> anyio.Lock:
        lock = self._locks.get(invite_id)
        if lock is None:
            # fast_acquire: a free lock is taken without a pass of the event loop (~30 us
            # on the benchmark machine, once per notification); a taken one still waits.
            lock = self._locks[invite_id] = anyio.Lock(fast_acquire=True)
        return lock

    def _adopt(self, entry: _Entry, invite: Invite, count: int) -> None:
        entry.invite = invite
        entry.count = count
        handle = self.client._handles.get(invite.invite_id)
        if handle is not None:
            handle.invite = invite

    def _keep(self, invite_id: str, entry: _Entry) -> None:
        cache = self._cache
        cache[invite_id] = entry
        cache.move_to_end(invite_id)
        if len(cache) > CACHE_LIMIT:
            handles = self.client._handles
            for old in list(cache)[: len(cache) - CACHE_LIMIT]:
                if old not in handles and not self._lock(old).locked():
                    self._forget(old)
        while len(self._operations) > CACHE_LIMIT:
            self._operations.popitem(last=False)

    def _forget(self, invite_id: str) -> None:
        entry = self._cache.pop(invite_id, None)
        if entry is not None and entry.invite.operation_id:
            self._operations.pop(entry.invite.operation_id, None)
        lock = self._locks.get(invite_id)
        if lock is not None and not lock.locked():
            del self._locks[invite_id]

    def _deadlines_of(self, event: Mapping[str, Any]) -> Deadlines:
        own = event.get("deadlines")  # the invite's timeout=; the client's for the rest
        if isinstance(own, Mapping):
            return attrs.evolve(self.client.switchboard.deadlines, **own)
        return self.client.switchboard.deadlines

    async def _load(self, invite_id: str, *, fresh: bool = False) -> _Entry:
        """The cached entry, or one folded from the store; ``fresh``: caught up first.

        Raises:
            UnknownInvite: the store has no such invite.
        """
        entry = self._cache.get(invite_id)
        if entry is None:
            events = await self.store.inputs(invite_id)
            first = events[0]
            entry = _Entry(
                replay(events), len(events), float(first["at"]), self._deadlines_of(first)
            )
            self._keep(invite_id, entry)
        elif fresh:
            await self._catch_up(invite_id, entry)
        return entry

    async def _catch_up(self, invite_id: str, entry: _Entry) -> bool:
        """Fold the inputs stored after ``entry.count``; True when there were any."""
        events = await self.store.inputs(invite_id, start=entry.count)
        if not events:
            return False
        invite = copy.copy(entry.invite)
        _fold(invite, events)
        self._adopt(entry, invite, entry.count + len(events))
        return True

    def deadline_of(self, invite_id: str) -> float | None:
        """When the cached invite's current state times out, or None."""
        entry = self._cache.get(invite_id)
        return None if entry is None else self._deadline(entry)

    @staticmethod
    def _deadline(entry: _Entry, invite: Invite | None = None) -> float | None:
        """When ``invite`` (the entry's, by default) times out in its state; None: finished."""
        invite = entry.invite if invite is None else invite
        seconds = entry.deadlines.for_state(invite.state)
        if seconds is None:
            return None
        entered = entry.born
        for step in reversed(invite.history):
            if not step.ignored and step.dest is invite.state and step.source is not step.dest:
                entered = step.at
                break
        return entered + seconds

    # -- applying one input ---------------------------------------------------------------

    async def _commit(
        self,
        invite_id: str,
        fingerprint: str,
        event: Mapping[str, Any],
        apply: Callable[[Invite], Outcome],
        *,
        fresh: bool = False,
    ) -> tuple[Outcome, _Entry, InviteState]:
        """Apply one input to the invite, in the store first (see the module docstring).

        Returns:
            What the input was to the invite, its entry, and its state before.
        """
        async with self._lock(invite_id):
            entry = await self._load(invite_id, fresh=fresh)
            before = entry.invite.state
            known_operation = entry.invite.operation_id
            trial = copy.copy(entry.invite)
            outcome = apply(trial)
            if outcome in (Outcome.not_mine, Outcome.duplicate, Outcome.late):
                # What the cache already folds is a prefix of the truth: it is so for good.
                return outcome, entry, before
            # A move sets the next deadline in the same round trip as the append.
            deadline = self._next_deadline(entry, trial) if trial.state is not before else None
            appended = await self.store.append(
                invite_id,
                fingerprint,
                event,
                snapshot=_snapshot(trial, entry.count + 1),
                deadline=deadline,
            )
            if not appended.new:
                await self._catch_up(invite_id, entry)
                return Outcome.duplicate, entry, before
            if appended.saved:
                self._adopt(entry, trial, appended.count)
                if deadline is not None:
                    self._wake_for(deadline)
            else:
                await self._catch_up(invite_id, entry)
                await self.store.save_snapshot(invite_id, _snapshot(entry.invite, entry.count))
                if entry.invite.state is not before:
                    await self._schedule(invite_id, entry)
            invite = entry.invite
            operation = invite.operation_id
            if operation and operation != known_operation:
                self._operations[operation] = invite_id
                await self.store.add_routes(invite_id, [operation_key(operation)])
            if invite.state is not before:
                # A move that asks for DELETEs (a cancel, a deadline while ringing): the
                # instance that made it sends them (a DELETE is idempotent).
                self.client._start_deletes(invite)
            return outcome, entry, before

    def _next_deadline(self, entry: _Entry, invite: Invite | None = None) -> float:
        """The invite's next deadline: its state's, or (finished) its release."""
        deadline = self._deadline(entry, invite)
        if deadline is None:  # finished: released once release_after has passed
            deadline = self.client.clock.now() + self.client.release_after
        return deadline

    async def _schedule(self, invite_id: str, entry: _Entry) -> None:
        """Give the store the invite's next deadline (see :meth:`_next_deadline`)."""
        deadline = self._next_deadline(entry)
        await self.store.schedule(invite_id, deadline)
        self._wake_for(deadline)

    def _wake_for(self, deadline: float) -> None:
        heapq.heappush(self._wakeups, deadline)
        if self._wake is not None and deadline <= self._wakeups[0]:
            self._wake.set()

    # -- invites --------------------------------------------------------------------------

    async def register(self, invite: Invite, event: Mapping[str, Any]) -> None:
        """Keep a new invite in the store before its POST leaves.

        Raises:
            InviteError: another in-flight invite holds its clientContext.
        """
        replaced = invite.replaces_call_id
        routes = [call_key(replaced)] if replaced else []
        for _ in range(2):
            try:
                await self.store.register(
                    invite.invite_id,
                    event,
                    call_id=invite.call_id,
                    client_context=invite.client_context,
                    route_keys=routes,
                )
                break
            except ClientContextInFlight as refused:
                # A finished holder waiting out release_after lets go now (as the
                # Switchboard does); an unfinished one keeps the clientContext.
                holder = await self._holder_finished(refused.invite_id)
                if holder is None:
                    raise InviteError(
                        f"clientContext {invite.client_context!r} is already used by an invite "
                        f"in flight (invite {refused.invite_id}); clientContext is the "
                        "correlation key and must be unique"
                    ) from None
                await self.store.release(holder, RECORD_TTL)
                self._forget(holder)
        entry = _Entry(invite, 1, float(event["at"]), self._deadlines_of(event))
        self._keep(invite.invite_id, entry)
        await self._schedule(invite.invite_id, entry)

    async def _attachable(self, invite_id: str) -> _Entry | None:
        try:
            async with self._lock(invite_id):
                return await self._load(invite_id, fresh=True)
        except UnknownInvite:
            return None

    async def _holder_finished(self, invite_id: str) -> str | None:
        try:
            snapshot = await self.store.snapshot(invite_id)
        except UnknownInvite:
            return None
        if snapshot is not None and InviteState(snapshot.state).is_terminal:
            return invite_id
        return None

    def sending_copy(self, invite: Invite) -> Invite:
        """A copy of the invite for the sending flow to work on (the store decides)."""
        entry = self._cache.get(invite.invite_id)
        return copy.copy(invite if entry is None else entry.invite)

    async def refreshed(self, invite_id: str) -> Invite:
        """A copy of the invite as the store has it now (before a retry of the POST)."""
        async with self._lock(invite_id):
            entry = await self._load(invite_id, fresh=True)
            return copy.copy(entry.invite)

    async def sent(self, invite_id: str, event: Mapping[str, Any] | None) -> Invite:
        """Apply the POST's last input (its answer, or why there is none); the invite."""
        if event is None:
            entry = await self._load(invite_id)
            return entry.invite

        def answer(invite: Invite) -> Outcome:
            _feed(invite, event["type"], event, float(event["at"]))
            return Outcome.applied

        _, entry, _ = await self._commit(invite_id, str(event["type"]), event, answer)
        return entry.invite

    async def attach(self, client_context: str) -> InviteHandle:
        """A handle on the invite with this clientContext, from the store.

        Raises:
            UnknownInvite: no invite in the store has this clientContext.
        """
        found = await self.store.route([client_context_key(client_context)])
        ids = found.get(client_context_key(client_context), ())
        entries = []
        for invite_id in ids:
            entry = await self._attachable(invite_id)
            if entry is not None:
                entries.append(entry)
        if not entries:
            raise UnknownInvite(f"clientContext:{client_context}")
        # The one in flight, else the latest.
        entry = max(entries, key=lambda e: (not e.invite.is_finished, e.born))
        invite_id = entry.invite.invite_id
        handle = self.client._handles.get(invite_id)
        if handle is None:
            client = self.client
            handle = InviteHandle(
                entry.invite, canceller=client._cancel, remover=client.remove_participant
            )
            handle.take_new_steps()  # what happened before the attach is history
            client._handles[invite_id] = handle
        # Told of its changes from now on; what came in before the watch is read here.
        await self.store.watch(invite_id)
        async with self._lock(invite_id):
            caught_up = await self._catch_up(invite_id, entry)
        if caught_up:
            self.client._changed(entry.invite)
        invite = entry.invite
        if not invite.is_finished:
            # Its deadline may belong to a dead instance's plan: make sure one is set.
            await self._schedule(invite.invite_id, entry)
        return handle

    # -- notifications --------------------------------------------------------------------

    async def receive(self, notifications: Sequence[CommsNotification], at: float) -> Receipt:
        """Route each notification through the store and apply it once fleet-wide."""
        for n in notifications:
            n.build_models()  # a malformed body raises before any is routed
        out: list[Delivery] = []
        for n in notifications:
            await self._route(n, at, out)
        return Receipt(tuple(out))

    async def _route(self, n: CommsNotification, at: float, out: list[Delivery]) -> None:
        kind = n.kind
        if kind is NotificationKind.unrecognised:
            out.append(unrecognised(n))
            return
        if kind is NotificationKind.operation:
            known = self._operations.get(n.operation_id) if n.operation_id else None
            if known is not None:
                ids: tuple[str, ...] = (known,)
            else:
                keys = []
                if n.operation_id:
                    keys.append(operation_key(n.operation_id))
                if n.client_context:
                    keys.append(client_context_key(n.client_context))
                found = await self.store.route(keys) if keys else {}
                ids = next((found[k] for k in keys if k in found), ())
        else:
            key = call_key(n.call_id) if n.call_id else None
            ids = (await self.store.route([key])).get(key, ()) if key else ()
        event = {"type": "notification", "at": at, "notification": n.to_json()}
        fingerprint = fingerprint_of(n)
        matched = False
        for invite_id in ids:
            try:
                outcome, entry, before = await self._commit(
                    invite_id,
                    fingerprint,
                    {**event, "invite_id": invite_id},
                    lambda invite: invite.offer(n, at=at),
                )
            except UnknownInvite:
                continue  # its record expired between the route and the read
            if outcome is Outcome.not_mine:
                continue
            matched = True
            invite = entry.invite
            moved = outcome is Outcome.applied and invite.state is not before
            out.append(
                Delivery(
                    notification=n,
                    outcome=_OUTCOMES[outcome],
                    invite=invite,
                    moved=moved,
                    reason=f"{before.value} -> {invite.state.value}" if moved else outcome.value,
                )
            )
        if matched:
            return
        if kind is NotificationKind.call_updated:
            out.append(ignored(n))
            return
        reason = "no invite in the store matches it"
        out.append(Delivery(notification=n, outcome=DeliveryOutcome.unmatched, reason=reason))

    # -- the push -------------------------------------------------------------------------

    async def _subscriber(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with self.store.subscribe() as changes:
            task_status.started()
            async for change in changes:
                invite_id = change.invite_id
                if invite_id not in self.client._handles:
                    continue  # nobody here waits for it; the cache catches up when used
                entry = self._cache.get(invite_id)
                if entry is not None and entry.count >= change.snapshot.version:
                    continue  # ours, or already folded
                try:
                    async with self._lock(invite_id):
                        entry = await self._load(invite_id, fresh=True)
                except (UnknownInvite, StoreError, OSError):
                    logger.exception("invite %s: cannot read its change", invite_id)
                    continue
                self.client._changed(entry.invite)

    # -- deadlines ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        clock = self.client.clock
        while True:
            now = clock.now()
            # Shielded: leaving the Client must not cut a command off halfway (the
            # client's connection would be left mid-reply); a claim is one round trip.
            with anyio.CancelScope(shield=True):
                try:
                    due = await self.store.claim_due(now, lease=LEASE, limit=100)
                except Exception:
                    logger.exception("claiming deadlines failed; trying again in %.1f s", POLL)
                    due = []
                for item in due:
                    await self._expire_logged(item.invite_id, now)
            if len(due) >= 100:
                continue
            wakeups = self._wakeups
            while wakeups and wakeups[0] <= now:
                heapq.heappop(wakeups)
            delay = min(POLL, wakeups[0] - now) if wakeups else POLL
            self._wake = wake = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_sleep_then_set, clock, delay, wake)
                await wake.wait()
                tg.cancel_scope.cancel()
            self._wake = None

    async def _expire_logged(self, invite_id: str, now: float) -> None:
        try:
            await self._expire(invite_id, now)
        except UnknownInvite:
            pass  # released and expired meanwhile
        except Exception:
            logger.exception("invite %s: its deadline could not be handled", invite_id)

    async def _expire(self, invite_id: str, now: float) -> None:
        """A deadline this instance claimed: time the invite out, or release it."""
        async with self._lock(invite_id):
            entry = await self._load(invite_id, fresh=True)
        invite = entry.invite
        if invite.is_finished:
            await self.store.release(invite_id, RECORD_TTL)
            self._forget(invite_id)
            return
        deadline = self._deadline(entry)
        if deadline is not None and deadline > now:  # it moved on since: a stale claim
            await self.store.schedule(invite_id, deadline)
            return
        state = invite.state.value
        event = {
            "type": "timeout",
            "invite_id": invite_id,
            "client_context": invite.client_context,
            "at": now,
            "state": state,
        }

        def time_out(trial: Invite) -> Outcome:
            trial.time_out(at=now)
            return Outcome.applied

        outcome, entry, before = await self._commit(
            invite_id, f"timeout:{state}", event, time_out, fresh=True
        )
        if outcome is Outcome.applied and entry.invite.state is not before:
            self.client._after(Receipt((), (entry.invite,)))
