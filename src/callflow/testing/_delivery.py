"""The fake service's callbacks: planned notifications, sent in order, on the fake's clock.

Theory of operation
-------------------
A :class:`Courier` holds the notifications the fake service has planned, in a queue
ordered by (due time, order planned), and sends them to one target: a
:class:`~callflow.Client` (anything with ``receive_notifications``), a webhook URL (a JSON
POST), or an async callable.

* **Automatic mode.** :meth:`Courier.run`, a task the fake starts in its task group,
  sleeps on the clock until the head of the queue is due and sends it. It sends one at a
  time, so the order is the same on asyncio and trio. A notification planned earlier
  than the one it sleeps for cuts the sleep short.
* **Manual mode.** Nothing is sent until the test says so: :attr:`Courier.pending` shows
  the queue; :meth:`Courier.deliver_next` sends its head, moving a
  :class:`~callflow.testing.VirtualClock` on to the notification's due time first (never
  back), so the invite sees the time it would have seen.

Every notification sent is logged as a :class:`Sent`, with the target's answer (the
Client's :class:`~callflow.Receipt`, the webhook's status) or why it could not be
delivered. A target that fails does not stop the ones after it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast, runtime_checkable

import anyio
import anyio.lowlevel
import attrs
import httpx

from .._clock import Clock
from .._core._switchboard import Receipt
from .._exceptions import CallflowError
from ._clock import VirtualClock

__all__ = ["Courier", "NotificationSink", "Target", "Outgoing", "Sent"]


@runtime_checkable
class NotificationSink(Protocol):
    """Anything that takes webhook bodies the way :class:`~callflow.Client` does."""

    async def receive_notifications(self, body: Mapping[str, Any]) -> Receipt:
        """Apply one ``commsNotifications`` body."""
        ...


#: Where notifications go: a Client (or other sink), a webhook URL, or an async callable.
Target = NotificationSink | str | Callable[[dict[str, Any]], Awaitable[object]]


@attrs.frozen(kw_only=True)
class Outgoing:
    """A notification the fake plans to send.

    Attributes:
        label: what it is (see :data:`~callflow.testing.LABELS`).
        body: the ``commsNotifications`` webhook body.
        due: when it is to be sent, on the fake's clock.
        operation_id: the operation it belongs to.
        call_id: the call the operation invited into.

    """

    label: str
    body: Mapping[str, Any]
    due: float
    operation_id: str
    call_id: str


@attrs.frozen(kw_only=True)
class Sent:
    """A notification the fake sent, and what became of it.

    Attributes:
        label: what it is (see :data:`~callflow.testing.LABELS`).
        body: the ``commsNotifications`` webhook body.
        at: when it was sent, on the fake's clock.
        operation_id: the operation it belongs to.
        to: ``"client"``, the webhook URL, ``"callable"``, or ``"nowhere"`` (no target).
        status_code: the webhook's HTTP answer, when sent over HTTP.
        receipt: the :class:`~callflow.Receipt`, when delivered to a Client.
        error: why delivery failed, if it did.

    """

    label: str
    body: Mapping[str, Any]
    at: float
    operation_id: str
    to: str
    status_code: int | None = None
    receipt: Receipt | None = None
    error: str | None = None


#: A queue entry: ``(due, order planned, notification)``. A plain tuple, so the heap
#: compares floats and ints in C (``seq`` is unique: ``Outgoing`` is never compared).
_Queued = tuple[float, int, Outgoing]


class Courier:
    """Sends planned notifications to a target, automatically or one at a time.

    Args:
        clock: where the time is read and waited for.
        target: where notifications go (see :data:`Target`); settable.
        manual: hold everything for :meth:`deliver_next`; settable.
        webhook_client: the client for webhook POSTs (made on first use and closed by
            :meth:`aclose` when not given).
        webhook_headers: extra headers for webhook POSTs.

    """

    def __init__(
        self,
        clock: Clock,
        *,
        target: Target | None = None,
        manual: bool = False,
        webhook_client: httpx.AsyncClient | None = None,
        webhook_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.clock = clock
        self._target: Target | None = None
        self._to = "nowhere"
        self.target = target
        #: Every notification sent, oldest first.
        self.sent: list[Sent] = []
        self._manual = manual
        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        self._webhook = webhook_client
        self._own_webhook = False
        self._webhook_headers = dict(webhook_headers or {})
        self._wake: anyio.Event | None = None
        self._nap: tuple[float, anyio.CancelScope] | None = None
        self._idle: anyio.Event | None = None
        self._busy = False

    @property
    def target(self) -> Target | None:
        """Where notifications go (see :data:`Target`); None sends them nowhere."""
        return self._target

    @target.setter
    def target(self, value: Target | None) -> None:
        # What kind of target it is is decided here, once, not per notification: the
        # runtime Protocol check costs as much as a small notification's delivery.
        if value is None:
            to = "nowhere"
        elif isinstance(value, str):
            to = value
        elif isinstance(value, NotificationSink):
            to = "client"
        else:
            to = "callable"
        self._target, self._to = value, to

    @property
    def manual(self) -> bool:
        """When True, notifications wait in :attr:`pending` for :meth:`deliver_next`."""
        return self._manual

    @manual.setter
    def manual(self, value: bool) -> None:
        self._manual = value
        self._poke()

    @property
    def pending(self) -> tuple[Outgoing, ...]:
        """The notifications planned and not yet sent, in the order they will be sent."""
        return tuple(q[2] for q in sorted(self._queue))

    def plan(self, outgoing: Outgoing) -> None:
        """Queue a notification to be sent at its due time."""
        heapq.heappush(self._queue, (outgoing.due, next(self._seq), outgoing))
        nap = self._nap
        if nap is not None and outgoing.due < nap[0]:
            nap[1].cancel()
        self._poke()

    def withdraw(self, operation_id: str, *, after: float) -> list[Outgoing]:
        """Take back an operation's planned notifications due later than ``after``.

        Returns:
            The notifications taken back, in the order they would have been sent.

        """
        keep: list[_Queued] = []
        gone: list[_Queued] = []
        for queued in self._queue:
            due, _, out = queued
            (gone if out.operation_id == operation_id and due > after else keep).append(queued)
        heapq.heapify(keep)
        self._queue[:] = keep
        return [q[2] for q in sorted(gone)]

    async def deliver_next(self) -> Sent:
        """Send the head of the queue now (see the module docstring).

        Raises:
            CallflowError: nothing is pending.

        """
        if not self._queue:
            raise CallflowError("FakeGraph: no notification is pending")
        due, _, outgoing = heapq.heappop(self._queue)
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(due)
            await anyio.lowlevel.checkpoint()
        return await self.send(outgoing)

    async def deliver_all(self) -> list[Sent]:
        """Send every pending notification in order."""
        return [await self.deliver_next() for _ in range(len(self._queue))]

    async def drain(self) -> None:
        """Wait until everything planned has been sent (in manual mode: send it).

        In automatic mode :meth:`run` must have been started, or this waits forever.
        """
        if self._manual:
            await self.deliver_all()
            return
        while self._queue or self._busy:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Send each notification when it is due, forever (start it in a task group)."""
        await self._run()

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if self._manual or not queue:
                if self._idle is not None and not queue:
                    self._idle.set()
                    self._idle = None
                self._wake = anyio.Event()
                await self._wake.wait()
                self._wake = None
                continue
            due = queue[0][0]
            delay = due - self.clock.now()
            if delay > 0:
                with anyio.CancelScope() as scope:
                    self._nap = (due, scope)
                    await self.clock.sleep(delay)
                self._nap = None
                continue
            outgoing = heapq.heappop(queue)[2]
            self._busy = True
            try:
                await self.send(outgoing)
            finally:
                self._busy = False

    async def send(self, item: Outgoing) -> Sent:
        """Send one notification to the target now, and log it."""
        target, to = self._target, self._to
        body = dict(item.body)
        at = self.clock.now()
        status_code: int | None = None
        receipt: Receipt | None = None
        error: str | None = None
        try:
            if target is None:
                pass
            elif isinstance(target, str):
                response = await self._webhook_client().post(
                    target,
                    json=body,
                    headers={"Content-Type": "application/json", **self._webhook_headers},
                )
                status_code = response.status_code
            elif to == "client":
                sink = cast(NotificationSink, target)
                receipt = await sink.receive_notifications(body)
            else:
                deliver = cast(Callable[[dict[str, Any]], Awaitable[object]], target)
                await deliver(body)
        except (CallflowError, httpx.HTTPError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        sent = Sent(
            label=item.label,
            body=item.body,
            at=at,
            operation_id=item.operation_id,
            to=to,
            status_code=status_code,
            receipt=receipt,
            error=error,
        )
        self.sent.append(sent)
        return sent

    def _webhook_client(self) -> httpx.AsyncClient:
        if self._webhook is None:
            self._webhook = httpx.AsyncClient(timeout=10.0)
            self._own_webhook = True
        return self._webhook

    async def aclose(self) -> None:
        """Close the webhook client if this courier made it."""
        if self._own_webhook and self._webhook is not None:
            await self._webhook.aclose()
            self._webhook = None
            self._own_webhook = False

    def __len__(self) -> int:
        return len(self._queue)
