"""The store seam: where invite records and their inputs live.

Theory of operation
-------------------
The core is deterministic, so an invite's durable form is the list of its inputs, in the
trace format of :mod:`callflow._trace` (``invite``, ``response``, ``notification``,
``timeout``, ``send_failed``, ``outcome_unknown``; each event carries its ``invite_id``),
plus a compact :class:`Snapshot` of the fold so far. Whoever holds the inputs can rebuild
the invite with :func:`callflow.replay`; the snapshot only spares a waiter the fold.

A :class:`Store` keeps, per invite id:

- the **inputs**, appended atomically and deduplicated by a fingerprint (the
  notification's, or ``timeout:<state>`` for a deadline): the same duplicate delivered to
  two instances at once is appended once, and :meth:`Store.append` says which was first;
- the **snapshot**, kept only when it covers exactly the inputs there are (its
  ``version`` is how many inputs it folds), and **published** when kept to the
  subscribers of the instances that **watch** the invite (the one that registered it,
  and those that called :meth:`Store.watch`), so an instance awaiting an outcome is told
  by a push; the instance that made the change is not told (it has it already);
- **routes**: route keys (:func:`client_context_key`, :func:`operation_key`,
  :func:`call_key`) to the invite ids a notification naming them belongs to; a
  clientContext is claimed by one in-flight invite at a time;
- a **deadline**, claimed by :meth:`Store.claim_due` exactly once: the claim is a lease,
  so a claimer that dies before appending the ``timeout`` lets another claim it later,
  and the ``timeout`` input's fingerprint keeps it applied once;
- after :meth:`Store.release`, a TTL: the record, its clientContext and operation routes
  stay that long (late notifications are then "late", not "unmatched"), then vanish.

:class:`MemoryStore` is the embedded default (one process, no dependency);
:class:`callflow.RedisStore` is the same contract for a fleet.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from ._exceptions import CallflowError

__all__ = [
    "Store",
    "MemoryStore",
    "Snapshot",
    "Appended",
    "Change",
    "Due",
    "StoreError",
    "ClientContextInFlight",
    "UnknownInvite",
    "client_context_key",
    "operation_key",
    "call_key",
    "INVITE_FINGERPRINT",
]

#: The fingerprint under which an invite's first input (its ``invite`` event) is kept.
INVITE_FINGERPRINT = "invite"


class StoreError(CallflowError, ValueError):
    """A store asked to do something its records refuse; the message says which invite."""


class ClientContextInFlight(StoreError):
    """A clientContext already claimed by an invite that is still in flight.

    Attributes:
        client_context: the clientContext asked for.
        invite_id: the in-flight invite that holds it.
    """

    def __init__(self, client_context: str, invite_id: str) -> None:
        super().__init__(
            f"clientContext {client_context!r} is in flight (invite {invite_id!r}): it is "
            "callflow's correlation key, so a second invite may not use it until the first ends"
        )
        self.client_context = client_context
        self.invite_id = invite_id


class UnknownInvite(StoreError):
    """An invite id the store has no record of (never registered, or expired)."""

    def __init__(self, invite_id: str) -> None:
        super().__init__(f"no invite {invite_id!r} in the store (never registered, or expired)")
        self.invite_id = invite_id


def client_context_key(client_context: str) -> str:
    """The route key of a clientContext."""
    return f"clientContext:{client_context}"


def operation_key(operation_id: str) -> str:
    """The route key of an operation id (from the invite's answer)."""
    return f"operation:{operation_id}"


def call_key(call_id: str) -> str:
    """The route key of a call id: the invite's own call, or the one it replaces."""
    return f"call:{call_id}"


def _is_call_key(key: str) -> bool:
    return key.startswith("call:")


@attrs.frozen(kw_only=True)
class Snapshot:
    """The compact fold of an invite's first ``version`` inputs.

    Attributes:
        version: how many inputs (the ``invite`` event included) it folds; at least 1.
        state: the invite's state after them, by name.
        data: whatever else a waiter needs without folding (JSON-ready).
    """

    version: int = attrs.field(validator=attrs.validators.and_(attrs.validators.instance_of(int)))
    state: str = attrs.field(validator=attrs.validators.instance_of(str))
    data: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.version < 1:
            raise StoreError(f"a snapshot folds at least the invite event: version {self.version}")

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data."""
        return {"version": self.version, "state": self.state, "data": dict(self.data)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read :meth:`to_dict`'s form back.

        Raises:
            StoreError: the data is not a snapshot.
        """
        try:
            return cls(version=data["version"], state=data["state"], data=data.get("data") or {})
        except (KeyError, TypeError) as exc:
            raise StoreError(f"not a snapshot: {exc!r}") from None


@attrs.frozen(kw_only=True)
class Appended:
    """What :meth:`Store.append` did.

    Attributes:
        new: False when an input with the same fingerprint was already there.
        count: how many inputs the invite has now (the new one's position + 1).
        saved: the snapshot given with it was kept and published.
    """

    new: bool
    count: int
    saved: bool = False


@attrs.frozen(kw_only=True)
class Change:
    """A published state change: an invite's newly kept snapshot."""

    invite_id: str
    snapshot: Snapshot

    def to_json(self) -> str:
        """The change as one JSON document (what Redis publishes)."""
        return change_json(self.invite_id, json.dumps(self.snapshot.to_dict()))

    @classmethod
    def from_json(cls, text: str | bytes) -> Change:
        """Read :meth:`to_json`'s form back.

        Raises:
            StoreError: the text is not a change.
        """
        try:
            data = json.loads(text)
            return cls(
                invite_id=str(data["invite_id"]), snapshot=Snapshot.from_dict(data["snapshot"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"not a published change: {exc!r}") from None


def change_json(invite_id: str, snapshot_json: str) -> str:
    """:meth:`Change.to_json` of an invite's snapshot already written as JSON."""
    return f'{{"invite_id": {json.dumps(invite_id)}, "snapshot": {snapshot_json}}}'


@attrs.frozen(kw_only=True)
class Due:
    """A deadline claimed by :meth:`Store.claim_due`: ``invite_id``'s, due ``at``."""

    invite_id: str
    at: float


class Store(Protocol):
    """Where invite records and their inputs live (see the module's theory of operation).

    A store is an async context manager: enter it before use.
    """

    async def __aenter__(self) -> Store: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def register(
        self,
        invite_id: str,
        event: Mapping[str, Any],
        *,
        call_id: str,
        client_context: str,
        route_keys: Collection[str] = (),
    ) -> None:
        """Keep a new invite: its ``invite`` event as input 1.

        It is routed by its clientContext, its call and ``route_keys``.

        Raises:
            ClientContextInFlight: another in-flight invite holds the clientContext.
            StoreError: the invite id is already registered, or ``event`` is not an
                ``invite`` event of this invite.
        """
        ...

    async def add_routes(self, invite_id: str, route_keys: Collection[str]) -> None:
        """Route ``route_keys`` (such as the answer's operation id) to the invite too.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    async def route(self, route_keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The invite ids each key routes to; keys that route nowhere are left out."""
        ...

    async def append(
        self,
        invite_id: str,
        fingerprint: str,
        event: Mapping[str, Any],
        *,
        snapshot: Snapshot | None = None,
        deadline: float | None = None,
    ) -> Appended:
        """Append one input, unless one with the same fingerprint is there; atomically.

        Args:
            invite_id: the invite.
            fingerprint: what makes this input a duplicate of another.
            event: the input, as a trace event.
            snapshot: the fold including this input, kept and published only when its
                version equals the new count (no other input came in between).
            deadline: when the snapshot is kept, the invite's deadline becomes this (as
                :meth:`schedule`), in the same round trip.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    async def inputs(self, invite_id: str, start: int = 0) -> list[dict[str, Any]]:
        """The invite's inputs from position ``start`` on, in the order appended.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    async def snapshot(self, invite_id: str) -> Snapshot | None:
        """The latest kept snapshot, None before the first.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    async def save_snapshot(self, invite_id: str, snapshot: Snapshot) -> bool:
        """Keep and publish ``snapshot`` if it is newer and covers only inputs there are.

        Returns whether it was kept.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    async def watch(self, invite_id: str) -> None:
        """Have this store's subscribers told of the invite's changes from now on.

        The store that registered an invite watches it already.

        Raises:
            UnknownInvite: no such invite.
        """
        ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Change]]:
        """The changes of the invites this store watches, from the moment it is entered.

        Its own changes may be left out; other invites' changes may be included.
        """
        ...

    async def schedule(self, invite_id: str, at: float) -> None:
        """Set (or move) the invite's one deadline to ``at`` (the engine's clock)."""
        ...

    async def claim_due(self, now: float, *, lease: float, limit: int = 100) -> list[Due]:
        """Claim up to ``limit`` deadlines due at ``now``, each by exactly one caller.

        A claimed deadline is moved to ``now + lease``: unless its claimer reschedules or
        releases the invite by then, it is due again (the claimer may have died).
        """
        ...

    async def release(self, invite_id: str, ttl: float) -> None:
        """The invite is finished: free its clientContext, drop its deadline.

        Its call routes go now; its record and other routes ``ttl`` seconds from now.

        Raises:
            UnknownInvite: no such invite.
        """
        ...


def check_invite_event(invite_id: str, event: Mapping[str, Any]) -> None:
    """Refuse a first input that is not this invite's ``invite`` event.

    Raises:
        StoreError: naming what is wrong.
    """
    if event.get("type") != "invite":
        raise StoreError(f"invite {invite_id!r}: the first input must be an 'invite' event")
    check_event(invite_id, event)


def check_event(invite_id: str, event: Mapping[str, Any]) -> None:
    """Refuse an event that names another invite.

    Raises:
        StoreError: the event's ``invite_id`` is another invite's.
    """
    named = event.get("invite_id", invite_id)
    if named != invite_id:
        raise StoreError(f"an event of invite {named!r} cannot be stored as {invite_id!r}'s")


@attrs.define
class _Record:
    call_id: str
    client_context: str
    inputs: list[dict[str, Any]]
    seen: set[str]
    route_keys: set[str]
    snapshot: Snapshot | None = None
    expires_at: float = math.inf


class MemoryStore:
    """The embedded store: everything in this process's memory.

    Args:
        clock: seconds, monotonic; when TTLs run out (tests may pass a virtual clock).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._claims: dict[str, str] = {}
        # route key -> invite id -> when the route lapses (inf while in flight)
        self._routes: dict[str, dict[str, float]] = {}
        # the deadline of each invite, and a heap of them (entries no longer current are
        # skipped when they surface), so a claim costs O(log n), not a scan
        self._deadlines: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []
        self._expiries: list[tuple[float, str]] = []
        self._subscribers: set[MemoryObjectSendStream[Change]] = set()

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _purge(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, invite_id = heapq.heappop(self._expiries)
            record = self._records.get(invite_id)
            if record is None or record.expires_at > now:
                continue
            del self._records[invite_id]
            for key in record.route_keys:
                holders = self._routes.get(key, {})
                holders.pop(invite_id, None)
                if not holders:
                    self._routes.pop(key, None)

    def _record(self, invite_id: str) -> _Record:
        self._purge()
        record = self._records.get(invite_id)
        if record is None:
            raise UnknownInvite(invite_id)
        return record

    def _add_routes(self, invite_id: str, record: _Record, keys: Iterable[str]) -> None:
        for key in keys:
            record.route_keys.add(key)
            self._routes.setdefault(key, {})[invite_id] = math.inf

    async def register(
        self,
        invite_id: str,
        event: Mapping[str, Any],
        *,
        call_id: str,
        client_context: str,
        route_keys: Collection[str] = (),
    ) -> None:
        """See :meth:`Store.register`."""
        check_invite_event(invite_id, event)
        self._purge()
        if invite_id in self._records:
            raise StoreError(f"invite {invite_id!r} is already registered")
        holder = self._claims.get(client_context)
        if holder is not None:
            raise ClientContextInFlight(client_context, holder)
        self._claims[client_context] = invite_id
        record = _Record(call_id, client_context, [dict(event)], {INVITE_FINGERPRINT}, set())
        self._records[invite_id] = record
        keys = [client_context_key(client_context), call_key(call_id), *route_keys]
        self._add_routes(invite_id, record, keys)

    async def add_routes(self, invite_id: str, route_keys: Collection[str]) -> None:
        """See :meth:`Store.add_routes`."""
        self._add_routes(invite_id, self._record(invite_id), route_keys)

    async def route(self, route_keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """See :meth:`Store.route`."""
        self._purge()
        now = self._clock()
        found = {}
        for key in route_keys:
            holders = [i for i, until in self._routes.get(key, {}).items() if until > now]
            if holders:
                found[key] = tuple(holders)
        return found

    async def append(
        self,
        invite_id: str,
        fingerprint: str,
        event: Mapping[str, Any],
        *,
        snapshot: Snapshot | None = None,
        deadline: float | None = None,
    ) -> Appended:
        """See :meth:`Store.append`."""
        check_event(invite_id, event)
        record = self._record(invite_id)
        if fingerprint in record.seen:
            return Appended(new=False, count=len(record.inputs))
        record.seen.add(fingerprint)
        record.inputs.append(dict(event))
        count = len(record.inputs)
        saved = snapshot is not None and snapshot.version == count
        if saved:
            assert snapshot is not None
            self._keep(invite_id, record, snapshot)
            if deadline is not None:
                self._schedule(invite_id, deadline)
        return Appended(new=True, count=count, saved=saved)

    async def inputs(self, invite_id: str, start: int = 0) -> list[dict[str, Any]]:
        """See :meth:`Store.inputs`."""
        return [dict(e) for e in self._record(invite_id).inputs[start:]]

    async def snapshot(self, invite_id: str) -> Snapshot | None:
        """See :meth:`Store.snapshot`."""
        return self._record(invite_id).snapshot

    async def save_snapshot(self, invite_id: str, snapshot: Snapshot) -> bool:
        """See :meth:`Store.save_snapshot`."""
        record = self._record(invite_id)
        kept = record.snapshot.version if record.snapshot is not None else 0
        if not kept < snapshot.version <= len(record.inputs):
            return False
        self._keep(invite_id, record, snapshot)
        return True

    def _keep(self, invite_id: str, record: _Record, snapshot: Snapshot) -> None:
        record.snapshot = snapshot
        change = Change(invite_id=invite_id, snapshot=snapshot)
        for subscriber in self._subscribers:
            subscriber.send_nowait(change)

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[Change]]:
        # Unbounded: the subscriber is the engine's own loop, which only hands each change
        # to a waiting handle; a bounded buffer would have to drop or block the publisher.
        send, receive = anyio.create_memory_object_stream[Change](math.inf)
        self._subscribers.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Change]]:
        """See :meth:`Store.subscribe`.

        In one process every change is told to every subscriber (two Clients sharing
        this store are told of each other's).
        """
        return self._subscription()

    async def watch(self, invite_id: str) -> None:
        """See :meth:`Store.watch` (every subscriber is told of every change here)."""
        self._record(invite_id)

    async def schedule(self, invite_id: str, at: float) -> None:
        """See :meth:`Store.schedule`."""
        self._record(invite_id)
        self._schedule(invite_id, at)

    def _schedule(self, invite_id: str, at: float) -> None:
        self._deadlines[invite_id] = at
        heapq.heappush(self._due, (at, invite_id))

    async def claim_due(self, now: float, *, lease: float, limit: int = 100) -> list[Due]:
        """See :meth:`Store.claim_due`."""
        claimed: dict[str, Due] = {}
        while self._due and self._due[0][0] <= now and len(claimed) < limit:
            at, invite_id = heapq.heappop(self._due)
            if self._deadlines.get(invite_id) == at and invite_id not in claimed:
                claimed[invite_id] = Due(invite_id=invite_id, at=at)
            # else: moved, dropped, or a second entry for the same deadline
        for invite_id in claimed:
            self._deadlines[invite_id] = now + lease
            heapq.heappush(self._due, (now + lease, invite_id))
        return list(claimed.values())

    async def release(self, invite_id: str, ttl: float) -> None:
        """See :meth:`Store.release`."""
        record = self._record(invite_id)
        if self._claims.get(record.client_context) == invite_id:
            del self._claims[record.client_context]
        self._deadlines.pop(invite_id, None)
        until = self._clock() + ttl
        for key in list(record.route_keys):
            holders = self._routes.get(key, {})
            if _is_call_key(key):
                holders.pop(invite_id, None)
                record.route_keys.discard(key)
                if not holders:
                    self._routes.pop(key, None)
            elif invite_id in holders:
                holders[invite_id] = until
        record.expires_at = until
        heapq.heappush(self._expiries, (until, invite_id))
