"""The async engine: send invites with httpx, track them on an anyio event loop.

Theory of operation
-------------------
:class:`Client` performs what the sans-I/O core asks. It owns one
:class:`~callflow.Switchboard`, and everything that changes an invite goes through it,
synchronously, with no ``await`` in between: parsing a webhook body and applying it is a
few microseconds, so notifications about one call are applied in the order they arrived
and no call ever waits for another.

* :meth:`Client.invite` validates and registers the invite *before* the POST leaves, so a
  notification that beats the HTTP answer is applied to it; then sends the POST under the
  :class:`~callflow.RetryPolicy` (429s and unsent requests are retried; an answer lost
  after sending is never re-sent) and feeds the answer to the invite.
* :meth:`Client.receive_notifications` is what the bot's webhook calls; it returns as soon
  as the body is applied (the webhook answers 202).
* One timer task sleeps until the switchboard's next deadline (through the
  :class:`~callflow._clock.Clock`, so tests skip time) and fails what expired. Another
  releases finished invites from the switchboard ``release_after`` seconds later, so the
  roster update that follows a completion still reaches its invite (its queue is in time
  order, so a finishing invite never has to cut a sleep short: it sets an event at most).
* Cancels: an invite in ``cancelling`` (``handle.cancel()``, or a deadline in
  ``requested``/``running``) asks for one DELETE per participant whose id it knows
  (:meth:`~callflow.Invite.delete_requests`); each runs in its own task under the core's
  :class:`~callflow._core._deleting.Deleting` flow, which feeds the final answer back.
  An id that comes later (in the POST's answer, in a roster) starts its DELETE then.
  :meth:`Client.remove_participant` sends the same DELETE for a participant who joined.
* Callbacks (``on_state``, ``on_roster``, ``on_unmatched``) run in tasks, one lane per
  call: in order for one call, independently across calls. A callback that raises is
  logged and kept in :attr:`Client.callback_errors`; the invite and the engine go on.
  At most ``callback_limit`` calls wait at once: past that, new ones are dropped,
  counted in :attr:`Client.callbacks_dropped` and logged (a slow callback under a flood
  costs bounded memory, and never silently).
* A big body is applied in parts of at most ``work_per_part`` (invite, notification)
  offers, yielding to the event loop between parts, in arrival order across bodies: a
  roster fanned out to hundreds of invites never blocks the loop for the whole body.

Sending is bounded by the invite: when it finishes (its deadline passed, or a
notification decided it), a POST or token request still waiting is abandoned, so
``invite()`` returns by the deadline even with ``timeout=None`` on the HTTP client.
A caller cancelled inside ``invite()`` leaves no orphan: before the POST leaves (token,
429 back-off) the invite fails unsent and its clientContext is free again; while the
POST is in flight its outcome is unknown, and it waits for its notifications as any
lost answer does. Leaving the ``async with`` block abandons every send in progress the
same way (nothing is sent after the block exits), then cancels the timer and the
callback lanes; an unfinished invite's :meth:`InviteHandle.wait` then raises
:class:`~callflow.CallflowError`.
"""

from __future__ import annotations

import collections
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
import anyio.abc
import attrs
import httpx

from ._clock import Clock, SystemClock
from ._core._deleting import Deleting, Removal
from ._core._flows import Workflow
from ._core._invite import Invite
from ._core._machine import InviteState
from ._core._models import InvitationParticipantInfo
from ._core._notifications import CommsNotification, NotificationKind, parse_notifications
from ._core._records import HttpRequest, Step, delete_request
from ._core._retry import RetryPolicy, Send, Sending, Stop, Wait
from ._core._switchboard import Deadlines, Delivery, DeliveryOutcome, Receipt, Switchboard
from ._exceptions import CallflowError, ConfigurationError, NotificationError, RemoveFailed
from ._flow_engine import ParticipantSpec, WorkflowHandle, builtin, start_workflow
from ._handle import InviteHandle
from ._ids import new_id, new_invite_id
from ._kiota import KiotaParsable, from_sdk
from ._tasks import start_background, stop_background
from ._tokens import TokenCache, TokenSource, cloud_named
from ._trace import RECORDED_HEADERS, Recorder

if TYPE_CHECKING:
    from ._fleet import StoreEngine
    from ._store import Store

__all__ = ["Client", "GRAPH_BASE_URL"]

GRAPH_BASE_URL: Final = "https://graph.microsoft.com/v1.0"

logger = logging.getLogger("callflow")


def _log_ids(source: Any) -> dict[str, Any]:
    """The ids a log record carries as ``extra`` fields, for structured loggers to index.

    ``client_context``, ``call_id`` and ``operation_id`` (None when not known yet), and
    ``invite_id`` when the invite (or notification) has one.
    """
    ids = {
        "client_context": getattr(source, "client_context", None),
        "call_id": getattr(source, "call_id", None),
        "operation_id": getattr(source, "operation_id", None),
    }
    invite_id = getattr(source, "invite_id", None)
    if invite_id is not None:
        ids["invite_id"] = invite_id
    return ids


StateCallback = Callable[["InviteHandle", Step], "Awaitable[None] | None"]
RosterCallback = Callable[[CommsNotification, "tuple[InviteHandle, ...]"], "Awaitable[None] | None"]
UnmatchedCallback = Callable[[Delivery], "Awaitable[None] | None"]

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_UNHEARD: Final = frozenset(
    {DeliveryOutcome.unmatched, DeliveryOutcome.unrecognised, DeliveryOutcome.late}
)


#: The spent stream every read response is given (see :func:`_unbind`): a ByteStream only
#: hands out its bytes, so one immutable empty one serves every response.
_SPENT: Final = httpx.ByteStream(b"")


class _SendScope(Protocol):
    """What a send's cancel scope offers: anyio's on asyncio, trio's own on trio."""

    @property
    def cancelled_caught(self) -> bool: ...

    def cancel(self) -> None: ...

    def __enter__(self) -> object: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


def _send_scope_factory() -> Callable[[], _SendScope]:
    """The plainest cancel scope of the running backend, chosen once per open Client.

    On trio, ``trio.CancelScope`` itself: anyio's wraps it, and the wrapper cost a third
    of a send's scope. On asyncio, anyio's scope is the plain one (asyncio has none that
    honours anyio's shields).
    """
    trio = sys.modules.get("trio")  # loaded already if it runs us
    if trio is not None and trio.lowlevel.in_trio_run():
        scope: Callable[[], _SendScope] = trio.CancelScope
        return scope
    return anyio.CancelScope


def _unbind(response: httpx.Response) -> None:
    """Break the reference cycle httpx leaves between a read response and its stream.

    httpx binds each response's stream to the response (to time it), a cycle that only
    the cyclic garbage collector frees: with thousands of invites in flight, collecting
    those is much of what each young-generation collection does. ``post`` and
    ``delete`` have read the body, so the stream is spent: an empty one takes its place,
    and the response is freed as soon as the engine lets go of it.
    """
    response.stream = _SPENT


class Client:
    """Sends invites to Graph and tracks each to its outcome.

    Use it as an async context manager::

        async with callflow.Client(token=get_token) as client:
            handle = await client.invite(call_id, [participant])
            await handle.wait()

    Args:
        http_client: an ``httpx.AsyncClient`` used as given (transport, base_url,
            timeouts, proxies). Without one, callflow makes and closes its own.
        token: a bearer token string, a sync or async callable returning one (called
            per request), or an azure-identity credential (``callflow[azure]``), sync
            or ``azure.identity.aio``: its token is cached until ``expires_on`` less
            five minutes, one refresh at a time, a sync one fetched off the event loop.
        base_url: Graph's root, used when ``http_client`` has no base_url (default:
            the cloud's).
        cloud: the Graph deployment, choosing the base URL and the credential's scope
            together: ``"global"`` (graph.microsoft.com), ``"usgov"`` (US Gov L4,
            graph.microsoft.us), ``"dod"`` (dod-graph.microsoft.us) or ``"china"``
            (microsoftgraph.chinacloudapi.cn). ``ValueError`` for any other name.
        deadlines: how long each state may last (:class:`~callflow.Deadlines`).
        retry: the :class:`~callflow.RetryPolicy` for the POST.
        clock: where time is read and waited for (a virtual one in tests).
        on_state: called ``(handle, step)`` each time an invite enters a state.
        on_roster: called ``(notification, handles)`` for each roster update received.
        on_unmatched: called ``(delivery)`` for each notification that matched no
            invite: unmatched (left the backlog), unrecognised, or late.
        release_after: seconds a finished invite stays in the switchboard.
        backlog_limit: see :class:`~callflow.Switchboard`.
        backlog_max_age: see :class:`~callflow.Switchboard`.
        recorder: where each invite's inputs are written (:class:`~callflow.Recorder`).
        store: where invites live (:class:`~callflow.Store`): None keeps them in this
            process (the Switchboard); a :class:`~callflow.MemoryStore` or
            :class:`~callflow.RedisStore` shares them with every Client on the same store
            (a fleet; see the README's "Running a fleet"). With a store and no ``clock``,
            time is wall-clock time, the same on every machine.
        callback_limit: how many callback calls may wait at once (all lanes together);
            past that, new ones are dropped and counted in :attr:`callbacks_dropped`.
        work_per_part: the most (invite, notification) offers applied between two
            yields to the event loop when a body is big.

    Raises:
        ConfigurationError: ``callback_limit`` or ``work_per_part`` below 1.

    """

    def __init__(
        self,
        http_client: httpx.AsyncClient | None = None,
        *,
        token: TokenSource | None = None,
        base_url: str | None = None,
        cloud: str = "global",
        deadlines: Deadlines | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        on_state: StateCallback | None = None,
        on_roster: RosterCallback | None = None,
        on_unmatched: UnmatchedCallback | None = None,
        release_after: float = 60.0,
        backlog_limit: int = 1000,
        backlog_max_age: float = 60.0,
        recorder: Recorder | None = None,
        callback_limit: int = 10_000,
        work_per_part: int = 2_000,
        store: Store | None = None,
    ) -> None:
        if callback_limit < 1 or work_per_part < 1:
            raise ConfigurationError("callback_limit and work_per_part must be at least 1")
        self._given_http = http_client
        self._http: httpx.AsyncClient | None = http_client
        graph = cloud_named(cloud)
        self.cloud = graph
        self._tokens = TokenCache(token, graph.scope)
        self.base_url = (graph.base_url if base_url is None else base_url).rstrip("/")
        self.retry = retry or RetryPolicy()
        self.store = store
        self._fleet: StoreEngine | None = None
        if store is not None:
            from ._fleet import StoreEngine, WallClock

            clock = clock or WallClock()
            self._fleet = StoreEngine(self, store)
        self.clock: Clock = clock or SystemClock()
        self.switchboard = Switchboard(
            deadlines=deadlines,
            backlog_limit=backlog_limit,
            backlog_max_age=backlog_max_age,
            clock=self.clock.now,
        )
        self.on_state = on_state
        self.on_roster = on_roster
        self.on_unmatched = on_unmatched
        self.release_after = release_after
        self.recorder = recorder
        #: The last 100 exceptions raised by callbacks, as ``(callback name, exception)``.
        self.callback_errors: collections.deque[tuple[str, BaseException]] = collections.deque(
            maxlen=100
        )
        #: Callback calls dropped because ``callback_limit`` were waiting, by callback.
        self.callbacks_dropped: collections.Counter[str] = collections.Counter()
        self.callback_limit = callback_limit
        self.work_per_part = work_per_part
        self._callbacks_pending = 0
        self._dropping = 0  # dropped since the queue last filled up (0: not full)
        self._handles: dict[str, InviteHandle] = {}
        #: Who hears of a notification that came after its invite ended, by invite id.
        self._late_listeners: dict[str, Callable[[Delivery], None]] = {}
        # Sends in progress, by invite id: the scope that abandons one, and the deadline
        # it may not outlast (see ``_send_bounded``).
        self._sends: dict[str, tuple[_SendScope, float | None]] = {}
        self._send_scope: Callable[[], _SendScope] = anyio.CancelScope
        self._posting: set[str] = set()  # invite ids whose POST is in flight
        self._sends_done: anyio.Event | None = None
        self._closing = False
        self._applying: anyio.Lock | None = None
        #: The DELETEs under way, as (invite_id, url).
        self._deleting: set[tuple[str, str]] = set()
        self._finished: collections.deque[tuple[float, Invite]] = collections.deque()
        self._lanes: dict[str, collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_wake: anyio.Event | None = None
        self._timer_at: float | None = None
        self._release_wake: anyio.Event | None = None
        self._root = self.base_url

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        if self._tg is not None:
            raise CallflowError("this Client is already open")
        self._closing = False
        self._send_scope = _send_scope_factory()
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=30.0)
        # Absolute URLs: the client's own base_url when it has one, else ours. (httpx
        # parses a relative URL twice to merge it; an absolute one once.)
        self._root = str(self._http.base_url).rstrip("/") or self.base_url
        if self._fleet is not None:
            await self._fleet.enter()
        self._tg = await start_background(self._timer_loop, "callflow timer")
        self._release_wake = None
        self._tg.start_soon(self._release_loop, name="callflow releases")
        if self._fleet is not None:
            try:
                await self._fleet.start(self._tg)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        self._closing = True
        await self._abandon_sends()
        try:
            # The body's exception goes on as raised (InviteFailed stays InviteFailed).
            await stop_background(tg)
        finally:
            if self._fleet is not None:
                await self._fleet.close()
            for handle in self._handles.values():
                handle.close()
                if self.recorder is not None:
                    self._record_result(handle.invite)
            self._handles.clear()
            self._late_listeners.clear()
            if self._given_http is None and self._http is not None:
                await self._http.aclose()
                self._http = None
        return None

    def _task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise CallflowError("the Client is not open: use `async with Client(...) as client`")
        return self._tg

    # -- invites --------------------------------------------------------------------------

    async def invite(
        self,
        call_id: str,
        participants: Sequence[InvitationParticipantInfo | Mapping[str, Any] | KiotaParsable],
        *,
        client_context: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline, not a cancel scope
    ) -> InviteHandle:
        """Invite participants to a call, and track the invite.

        Returns once the POST has been answered, or has failed for good. The invite is
        registered before the request leaves, so a notification that beats the answer
        is applied to it.

        Args:
            call_id: the call to invite into.
            participants: ``InvitationParticipantInfo`` objects, spec-shaped mappings,
                or msgraph-sdk-python's ``InvitationParticipantInfo`` models.
            client_context: the correlation key; a fresh unique one (uuid4-shaped, see
                :func:`callflow._ids.new_id`) when not given.
            timeout: seconds this invite may stay in requested, running and
                tearing_down_original, instead of the client's
                :class:`~callflow.Deadlines` (a deadline while ringing cancels it; the
                cancel keeps the client's ``cancelling`` deadline).

        Returns:
            An :class:`InviteHandle`; ``await handle.wait()`` for the outcome.

        Raises:
            InviteError: the request is invalid, or a kiota model in it cannot be read
                (not an ``InvitationParticipantInfo``, or ``pip install msgraph-sdk``);
                nothing was sent.
            CallflowError: the Client is not open.

        """
        self._task_group()
        invite = Invite(
            call_id,
            from_sdk(participants),
            client_context=new_id() if client_context is None else client_context,
            invite_id=new_invite_id(),
        )
        own = (
            None
            if timeout is None
            else attrs.evolve(
                self.switchboard.deadlines,
                requested=timeout,
                running=timeout,
                tearing_down_original=timeout,
            )
        )
        fleet = self._fleet
        if fleet is not None:
            event = self._event(invite, "invite", **self._invite_fields(invite, timeout))
            await fleet.register(invite, event)
            handle = InviteHandle(invite, canceller=self._cancel, remover=self.remove_participant)
            self._handles[invite.invite_id] = handle
            if self.recorder is not None:
                self._write(event)
            last = await self._send(fleet.sending_copy(invite), fleet.deadline_of(invite.invite_id))
            self._changed(await fleet.sent(invite.invite_id, last))
            return handle
        receipt = self.switchboard.add(invite, at=self.clock.now(), deadlines=own, before_post=True)
        handle = InviteHandle(invite, canceller=self._cancel, remover=self.remove_participant)
        self._handles[invite.invite_id] = handle
        if self.recorder is not None:
            self._record(invite, "invite", **self._invite_fields(invite, None))
        if receipt.deliveries:
            self._after(receipt)
        deadline = self.switchboard.deadline_of(invite)
        self._arm(deadline)
        await self._send_bounded(invite, deadline)
        self._moved(invite)
        if self._closing:
            raise CallflowError(
                f"the Client was closed while invite {invite.invite_id} was being sent "
                f"({invite.state}; {invite.history[-1].cause})"
            )
        return handle

    @staticmethod
    def _invite_fields(invite: Invite, timeout: float | None) -> dict[str, Any]:
        """The fields of an invite's ``invite`` event (its own deadlines, if it has some)."""
        fields: dict[str, Any] = {
            "call_id": invite.call_id,
            "kind": invite.kind.value,
            "request": invite.request().json,
        }
        if timeout is not None:
            fields["deadlines"] = dict.fromkeys(
                ("requested", "running", "tearing_down_original"), timeout
            )
        return fields

    def _moved(self, invite: Invite) -> None:
        """After an input fed outside the switchboard: deadline, waiters, DELETEs."""
        self.switchboard.note_response(invite, at=self.clock.now())
        self._changed(invite)
        self._arm(self.switchboard.deadline_of(invite))
        self._start_deletes(invite)  # the core says which DELETEs are due (none unless cancelling)

    async def _authorised(self, headers: Mapping[str, str]) -> dict[str, str] | str:
        """``headers`` with the bearer token, or why the token provider failed."""
        try:
            token = await self._tokens.get()
        except Exception as exc:
            return f"the token provider raised {type(exc).__name__}"
        out = dict(headers)
        if token is not None:
            out["Authorization"] = "Bearer " + token
        return out

    async def _send_bounded(self, invite: Invite, deadline: float | None) -> None:
        """Send the invite's POST in a scope its end abandons, and settle it if cut short.

        One cancel scope per send, the one deadline mechanism: it is cancelled when the
        invite finishes (``_changed``), when its deadline passes with the POST in flight
        (``_end_send``), or when the Client closes. Cut short by the caller's cancellation
        or by the close, an invite still waiting to be taken is settled at once: failed
        unsent if no POST was in flight (its clientContext is free again), else its
        outcome is unknown. ``deadline`` is the invite's as it was registered.
        """
        key = invite.invite_id
        scope = self._send_scope()
        self._sends[key] = (scope, deadline)
        try:
            with scope:
                await self._send(invite, deadline)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self._settle(invite, "invite() was cancelled")
            else:
                self._settle(invite, f"{type(exc).__name__} was raised")
            raise
        else:
            if scope.cancelled_caught:
                self._settle(
                    invite, "the Client closed" if self._closing else "its deadline passed"
                )
        finally:
            del self._sends[key]
            self._posting.discard(key)
            if not self._sends and self._sends_done is not None:
                self._sends_done.set()

    def _settle(self, invite: Invite, why: str) -> None:
        if not (invite.is_waiting_to_be_taken or invite.state is InviteState.cancelling):
            return  # it moved on (answered, decided by a notification, timed out)
        at = self.clock.now()
        if invite.invite_id in self._posting:
            reason = f"{why} while the POST was in flight: outcome unknown"
            invite.outcome_unknown(reason, at=at)
            self._recorded(invite, "outcome_unknown", reason, at=at)
        else:
            reason = f"{why} before the POST was sent"
            invite.send_failed(reason, at=at)
            self._recorded(invite, "send_failed", reason, at=at)
        logger.info("invite %s: %s", invite.invite_id, reason, extra=_log_ids(invite))
        self._moved(invite)

    async def _abandon_sends(self) -> None:
        """Cut every send in progress short, and wait until each has settled its invite."""
        if not self._sends:
            return
        self._sends_done = anyio.Event()
        for scope, _ in self._sends.values():
            scope.cancel()
        # The senders are other tasks, cancelled: they settle at their next step.
        with anyio.move_on_after(5.0, shield=True):
            await self._sends_done.wait()
        self._sends_done = None

    async def _send(self, invite: Invite, deadline: float | None) -> dict[str, Any] | None:
        """Perform what the core's :class:`~callflow._core._retry.Sending` asks, until it stops.

        Returns:
            The input the invite took last (its answer, or why there is none), as a trace
            event; None when it took none.
        """
        http = self._http
        assert http is not None
        request = invite.request()
        content = request.content()
        url = self._root + request.url
        flow = Sending(invite, self.retry, deadline)
        action = flow.start()
        while not isinstance(action, Stop):
            if not isinstance(action, Send):
                logger.info(
                    "invite %s: %s; retrying in %.2fs",
                    invite.invite_id,
                    action.reason,
                    action.seconds,
                    extra=_log_ids(invite),
                )
                await self.clock.sleep(action.seconds)
                if self._fleet is not None:  # another instance may have moved it on
                    flow.invite = await self._fleet.refreshed(invite.invite_id)
                at = self.clock.now()
                action = flow.resume(at=at)
                if isinstance(action, Stop) and action.fed is not None:
                    return self._recorded(invite, action.fed, action.reason, at=at)
                continue
            headers = await self._authorised(request.headers)
            if isinstance(headers, str):
                at = self.clock.now()
                stop = flow.cannot_send(headers, at=at)
                return self._recorded(invite, "send_failed", stop.reason, at=at)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "invite %s: POST %s (attempt %d)",
                    invite.invite_id,
                    url,
                    action.attempt,
                    extra=_log_ids(invite),
                )
            self._posting.add(invite.invite_id)
            try:
                response = await http.post(url, content=content, headers=headers)
            except _NOT_SENT as exc:
                self._posting.discard(invite.invite_id)
                at = self.clock.now()
                action = flow.not_sent(type(exc).__name__, at=at)
                if isinstance(action, Stop):
                    logger.warning(
                        "invite %s: unreachable (%s)", invite.invite_id, exc, extra=_log_ids(invite)
                    )
                    return self._recorded(invite, "send_failed", action.reason, at=at)
                continue
            except httpx.TransportError as exc:
                self._posting.discard(invite.invite_id)
                at = self.clock.now()
                stop = flow.lost(type(exc).__name__, at=at)
                logger.warning(
                    "invite %s: %s; not re-sending",
                    invite.invite_id,
                    stop.reason,
                    extra=_log_ids(invite),
                )
                return self._recorded(invite, "outcome_unknown", stop.reason, at=at)
            self._posting.discard(invite.invite_id)
            _unbind(response)
            now = self.clock.now()
            action = flow.answered(
                response.status_code,
                response.headers,
                response.content,
                at=now,
                wall=time.time(),
            )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("invite %s: %s", invite.invite_id, action, extra=_log_ids(invite))
            if isinstance(action, Stop):
                return self._record_response(invite, response, now)
        return None

    # -- cancels and removals ---------------------------------------------------------

    async def _cancel(self, invite: Invite) -> InviteState:
        """Feed the bot's cancel to the invite and start its DELETEs (handle.cancel)."""
        self._task_group()
        at = self.clock.now()
        if self._fleet is not None:  # the cancel is an input like any other: to the store
            event = self._event(invite, "cancel", at=at)
            if self.recorder is not None:
                self._write(event)
            folded = await self._fleet.sent(invite.invite_id, event)
            self._changed(folded)
            self._start_deletes(folded)
            return folded.state
        state = invite.cancel(at=at)
        if self.recorder is not None:
            self._record(invite, "cancel", at=at)
        self._moved(invite)
        return state

    def _start_deletes(self, invite: Invite) -> None:
        """Start the DELETE of each participant the invite asks for, once each."""
        for request in invite.delete_requests():
            key = (invite.invite_id, request.url)
            if key in self._deleting:
                continue
            self._deleting.add(key)
            self._task_group().start_soon(
                self._cancel_participant, invite, request, key, name=f"callflow DELETE {key}"
            )

    async def _cancel_participant(
        self, invite: Invite, request: HttpRequest, key: tuple[str, str]
    ) -> None:
        fleet = self._fleet
        event: dict[str, Any] | None = None
        try:
            target = invite if fleet is None else fleet.sending_copy(invite)
            deadline = (
                self.switchboard.deadline_of(invite)
                if fleet is None
                else fleet.deadline_of(invite.invite_id)
            )
            flow = Deleting(request, self.retry, invite=target, deadline=deadline)
            result = await self._perform_delete(flow)
            if flow.fed:  # the input the invite was fed
                said = (
                    {"status_code": result.status_code}
                    if result.removed
                    else {"reason": result.reason}
                )
                event = self._event(
                    invite,
                    "delete_response" if result.removed else "delete_failed",
                    at=result.at,
                    participant_id=result.participant_id,
                    **said,
                )
                if self.recorder is not None:
                    self._write(event)
        finally:
            self._deleting.discard(key)
        if fleet is not None:  # the store folds it, once fleet-wide
            if event is not None:
                self._changed(await fleet.sent(invite.invite_id, event))
            return
        self._moved(invite)

    async def remove_participant(self, call_id: str, participant_id: str) -> bool:
        """Remove a participant from a call: ``DELETE .../participants/{participantId}``.

        For a participant who joined (a cancel leaves a completed invite alone): the
        DELETE hangs them up. Retried on 429 and 5xx (a DELETE is idempotent) under the
        client's :class:`~callflow.RetryPolicy`. No invite changes state.

        Args:
            call_id: the call.
            participant_id: the participant's id in that call (the invite answer's
                ``participants[].id``; ``handle.invite.participant_ids``).

        Returns:
            True when the participant was removed (2xx), False when already gone (404).

        Raises:
            InviteError: an id that is empty or contains ``/``.
            RemoveFailed: the DELETE was refused, or could not be sent after the retries.
            CallflowError: the Client is not open.

        """
        self._task_group()
        result = await self._perform_delete(
            Deleting(delete_request(call_id, participant_id), self.retry)
        )
        if not result.removed:
            raise RemoveFailed(
                result.reason,
                call_id=call_id,
                participant_id=participant_id,
                status_code=result.status_code,
            )
        logger.info("participant %s of call %s: %s", participant_id, call_id, result.reason)
        return result.status_code != 404

    async def _perform_delete(self, flow: Deleting) -> Removal:
        """Perform what the core's :class:`Deleting` flow asks, until it stops."""
        http = self._http
        assert http is not None
        url = self._root + flow.request.url
        action = flow.start()
        while not isinstance(action, Stop):
            if isinstance(action, Wait):
                logger.info("DELETE %s: %s; retrying in %.2fs", url, action.reason, action.seconds)
                await self.clock.sleep(action.seconds)
                action = flow.resume(at=self.clock.now())
                continue
            headers = await self._authorised(flow.request.headers)
            if isinstance(headers, str):
                action = flow.cannot_send(headers, at=self.clock.now())
                break
            try:
                response = await http.delete(url, headers=headers)
            except _NOT_SENT as exc:
                action = flow.not_sent(type(exc).__name__, at=self.clock.now())
                continue
            except httpx.TransportError as exc:
                action = flow.lost(type(exc).__name__, at=self.clock.now())
                continue
            _unbind(response)
            action = flow.answered(
                response.status_code, response.headers, at=self.clock.now(), wall=time.time()
            )
        assert flow.result is not None
        return flow.result

    def _recorded(
        self, invite: Invite, type_: str, reason: str, *, at: float | None = None
    ) -> dict[str, Any] | None:
        """The event of an input the invite took, written to the recorder if there is one.

        None when nobody keeps events (no recorder, no store): it is not built at all.
        """
        if self.recorder is None and self._fleet is None:
            return None
        event = self._event(invite, type_, reason=reason, at=at)
        if self.recorder is not None:
            self._write(event)
        return event

    # -- recording --------------------------------------------------------------------------

    def _event(
        self, invite: Invite, type_: str, *, at: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        return {
            "type": type_,
            "client_context": invite.client_context,
            "invite_id": invite.invite_id,
            "at": self.clock.now() if at is None else at,
            **fields,
        }

    def _record(
        self, invite: Invite, type_: str, *, at: float | None = None, **fields: Any
    ) -> None:
        self._write(self._event(invite, type_, at=at, **fields))

    def _write(self, event: dict[str, Any]) -> None:
        recorder = self.recorder
        assert recorder is not None
        try:
            recorder.record(event)
        except Exception:
            logger.exception("recorder %r raised; event %s not recorded", recorder, event["type"])

    def _record_response(
        self, invite: Invite, response: httpx.Response, at: float
    ) -> dict[str, Any] | None:
        """The ``response`` event (as :meth:`_recorded`: None when nobody keeps events)."""
        if self.recorder is None and self._fleet is None:
            return None
        headers = {k: v for k in RECORDED_HEADERS if (v := response.headers.get(k)) is not None}
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text or None
        event = self._event(
            invite, "response", at=at, status_code=response.status_code, headers=headers, body=body
        )
        if self.recorder is not None:
            self._write(event)
        return event

    def _record_result(self, invite: Invite) -> None:
        self._record(
            invite,
            "result",
            state=invite.state.value,
            history=[s.to_dict() for s in invite.history],
        )

    # -- workflows (see callflow._flow_engine) ---------------------------------------------

    async def hunt(
        self,
        call_id: str,
        participants: Sequence[ParticipantSpec],
        ring_for: float = 30.0,
        *,
        settle_for: float = 60.0,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline, not a cancel scope
    ) -> WorkflowHandle:
        """Sequential escalation: ring each participant in turn, ``ring_for`` seconds each.

        A decline, a failure or ``ring_for`` without an answer cancels that invite and
        moves to the next; the first to join wins. A participant who answers after their
        cancel failed is reported (``result.late_answers``); never are two left joined.

        Args:
            call_id: the call to invite into.
            participants: in the order they are rung (``InvitationParticipantInfo``,
                spec-shaped mappings, or :class:`~callflow.InviteInto` for another call).
            ring_for: seconds each participant rings.
            settle_for: seconds the ended workflow waits for outstanding cancels.
            timeout: each invite's own deadline per state (as in :meth:`invite`).

        Returns:
            A :class:`~callflow.WorkflowHandle`, once the first invite's POST is answered.

        Raises:
            WorkflowError: no participants, or a non-positive duration.
            InviteError: a participant is not a valid invitee; nothing was sent.
            CallflowError: the Client is not open.

        """
        flow = builtin("hunt", len(participants), ring_for, settle_for)
        return await self.run_workflow(call_id, participants, flow, timeout=timeout)

    async def ring_group(
        self,
        call_id: str,
        participants: Sequence[ParticipantSpec],
        ring_for: float = 30.0,
        *,
        settle_for: float = 60.0,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline, not a cancel scope
    ) -> WorkflowHandle:
        """Parallel ringing: invite everyone at once (one invite each); the first to join wins.

        Every other invite is cancelled at once; one who joins in the same instant, or
        later, is removed again (``result.removed``). Nobody within ``ring_for`` ends it
        ``nobody_answered``.

        Args:
            call_id: the call to invite into.
            participants: who to ring (as in :meth:`hunt`).
            ring_for: seconds the group rings.
            settle_for: seconds the ended workflow waits for outstanding cancels.
            timeout: each invite's own deadline per state (as in :meth:`invite`).

        Returns:
            A :class:`~callflow.WorkflowHandle`, once every invite's POST is answered.

        Raises:
            WorkflowError: no participants, or a non-positive duration.
            InviteError: a participant is not a valid invitee; nothing was sent.
            CallflowError: the Client is not open.

        """
        flow = builtin("ring_group", len(participants), ring_for, settle_for)
        return await self.run_workflow(call_id, participants, flow, timeout=timeout)

    async def run_workflow(
        self,
        call_id: str,
        participants: Sequence[ParticipantSpec],
        workflow: Workflow,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline, not a cancel scope
    ) -> WorkflowHandle:
        """Run a workflow declaration (your own, or :func:`callflow.hunt`'s) on a call.

        Args:
            call_id: the call to invite into.
            participants: one per participant index of the declaration.
            workflow: the :class:`~callflow.Workflow` declaration.
            timeout: each invite's own deadline per state (as in :meth:`invite`).

        Returns:
            A :class:`~callflow.WorkflowHandle`, once the initial state's POSTs are answered.

        Raises:
            WorkflowError: the participants do not match the declaration.
            InviteError: a participant is not a valid invitee; nothing was sent.
            CallflowError: the Client is not open.

        """
        return await start_workflow(self, call_id, participants, workflow, timeout=timeout)

    def _on_late(self, invite_id: str, heard: Callable[[Delivery], None]) -> None:
        """Call ``heard`` for each notification that reaches the invite after it ended."""
        self._late_listeners[invite_id] = heard

    # -- notifications ----------------------------------------------------------------------

    async def receive_notifications(
        self,
        body: bytes | str | Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Apply a webhook body; this is what the bot's webhook calls.

        Returns fast: the body is parsed and applied at once, callbacks run later in
        their lanes. The webhook should answer 202.

        Args:
            body: the ``commsNotifications`` body (bytes, text or parsed mapping).
            headers: the request's headers, if at hand (a non-JSON content type is
                refused).

        Returns:
            A :class:`~callflow.Receipt` saying what became of each notification.

        Raises:
            NotificationError: the body is malformed; nothing was applied.

        """
        if headers is not None:
            content_type = next(
                (v for k, v in headers.items() if k.lower() == "content-type"), None
            )
            if content_type is not None and "json" not in content_type.lower():
                raise NotificationError(f"content type {content_type!r} is not JSON")
        notifications = parse_notifications(body)
        if self._fleet is not None:
            receipt = await self._fleet.receive(notifications, at=self.clock.now())
            self._after(receipt)
            return receipt
        lock = self._applying
        if len(notifications) > 1 or (lock is not None and lock.locked()):
            return await self._receive_in_parts(notifications)
        receipt = self.switchboard.receive(notifications, at=self.clock.now())
        self._after(receipt)
        # An invite may have moved to a state with a nearer deadline, or a notification
        # may wait in the backlog to age out: the timer must wake for it.
        self._arm(self.switchboard.next_deadline())
        await anyio.lowlevel.checkpoint()
        return receipt

    async def _receive_in_parts(self, notifications: Sequence[CommsNotification]) -> Receipt:
        """Apply a body part by part, yielding between parts; bodies keep arrival order.

        Shielded: once a body is taken, all of it is applied even if the webhook's request
        is cancelled meanwhile.
        """
        if self._applying is None:
            self._applying = anyio.Lock()
        parts: list[Receipt] = []
        with anyio.CancelScope(shield=True):
            async with self._applying:
                for part in self.switchboard.receive_in_parts(
                    notifications, work_per_part=self.work_per_part
                ):
                    self._after(part)
                    self._arm(self.switchboard.next_deadline())
                    parts.append(part)
                    await anyio.lowlevel.checkpoint()
        return Receipt(
            tuple(d for p in parts for d in p.deliveries),
            tuple(i for p in parts for i in p.timed_out),
        )

    async def attach(self, client_context: str) -> InviteHandle:
        """A handle on an invite another instance (or this one, before a restart) sent.

        Needs a shared ``store``: the invite is folded from its stored inputs, and the
        handle follows it to its outcome like one :meth:`invite` returned. Nothing is
        sent: an invite whose answer never arrived waits for its notifications, and its
        deadline fails it if none comes.

        Args:
            client_context: the invite's clientContext.

        Returns:
            An :class:`InviteHandle` (already finished, if the invite is).

        Raises:
            UnknownInvite: the store has no invite with this clientContext.
            CallflowError: the Client is not open, or has no store.

        """
        self._task_group()
        if self._fleet is None:
            raise CallflowError("attach needs a store: Client(store=callflow.RedisStore(url))")
        return await self._fleet.attach(client_context)

    # -- what follows a change --------------------------------------------------------------

    def _after(self, receipt: Receipt) -> None:
        if self.recorder is not None:
            for delivery in receipt.deliveries:
                if delivery.invite is not None:
                    self._record(
                        delivery.invite,
                        "notification",
                        notification=delivery.notification.to_json(),
                    )
            for expired in receipt.timed_out:
                self._record(expired, "timeout", state=expired.history[-1].source.value)
        for delivery in receipt.deliveries:
            invite = delivery.invite
            if delivery.moved and invite is not None:
                self._changed(invite)
            elif delivery.outcome in _UNHEARD:
                level = (
                    logging.INFO if delivery.outcome is DeliveryOutcome.late else logging.WARNING
                )
                if logger.isEnabledFor(level):
                    logger.log(
                        level,
                        "notification %s: %s (%s)",
                        delivery.notification.describe(),
                        delivery.outcome,
                        delivery.reason,
                        extra=_log_ids(delivery.notification),
                    )
                if self.on_unmatched is not None:
                    self._call(
                        delivery.notification.call_id,
                        "on_unmatched",
                        self.on_unmatched,
                        (delivery,),
                    )
                if invite is not None and (heard := self._late_listeners.get(invite.invite_id)):
                    heard(delivery)
        if self.on_roster is not None:
            rosters: dict[int, list[InviteHandle]] = {}
            notes: dict[int, CommsNotification] = {}
            for delivery in receipt.deliveries:
                n = delivery.notification
                if n.kind is NotificationKind.roster:
                    notes[id(n)] = n
                    handle = self._handle_of(delivery.invite)
                    found = rosters.setdefault(id(n), [])
                    if handle is not None and delivery.outcome is DeliveryOutcome.applied:
                        found.append(handle)
            for key, n in notes.items():
                self._call(n.call_id, "on_roster", self.on_roster, (n, tuple(rosters[key])))
        for invite in receipt.timed_out:
            self._changed(invite)
        # A cancelling invite may now know a participant id (a roster), or have just
        # become cancelling (a deadline): its DELETEs start, once each.
        for delivery in receipt.deliveries:
            invite = delivery.invite
            if invite is not None and invite.state is InviteState.cancelling:
                self._start_deletes(invite)
        for invite in receipt.timed_out:
            if invite.state is InviteState.cancelling:
                self._start_deletes(invite)

    def _handle_of(self, invite: Invite | None) -> InviteHandle | None:
        return None if invite is None else self._handles.get(invite.invite_id)

    def _changed(self, invite: Invite) -> None:
        """Report the steps the invite took since last time, and wake its waiters.

        Each step is reported once, whatever moved it: a notification that beat the
        POST's answer, or one body that moved the invite twice.
        """
        if self._sends and (invite.is_finished or invite.state is InviteState.cancelling):
            self._end_send(invite)
        handle = self._handles.get(invite.invite_id)
        if handle is None:
            return
        new = handle.take_new_steps()
        if not new:
            return
        if self.on_state is not None:
            for step in new:
                if not step.ignored and step.dest is not step.source:
                    self._call(invite.call_id, "on_state", self.on_state, (handle, step))
        if invite.is_finished and any(step.dest.is_terminal and not step.ignored for step in new):
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "invite %s (operation %s): %s%s",
                    invite.client_context,
                    invite.operation_id,
                    invite.state,
                    f" ({invite.failure.describe()})" if invite.failure else "",
                    extra=_log_ids(invite),
                )
            self._to_release(invite)
        handle.notify()

    def _to_release(self, invite: Invite) -> None:
        """Queue a finished invite for release ``release_after`` seconds from now.

        The queue stays in time order (an entry is never due before the one ahead of it,
        even if ``release_after`` was lowered meanwhile), so the release task, sleeping
        until its head is due, never has to be woken early: only from an empty queue.
        """
        finished = self._finished
        due = self.clock.now() + self.release_after
        if finished and due < finished[-1][0]:
            due = finished[-1][0]
        finished.append((due, invite))
        wake = self._release_wake
        if wake is not None:
            self._release_wake = None
            wake.set()

    def _end_send(self, invite: Invite) -> None:
        """The invite finished or is cancelling while its send goes on: end the send.

        Not yet posted (a token request, a back-off), the send is abandoned at once: the
        invite never reached the service. A POST in flight of a cancelling invite goes on:
        its answer names the participant the DELETE needs, and the ``cancelling`` deadline
        bounds it. A finished invite's POST may still answer (the late answer is kept in
        the history) until the deadline the send started under.
        """
        sending = self._sends.get(invite.invite_id)
        if sending is None:
            return
        scope, deadline = sending
        if invite.invite_id not in self._posting or deadline is None:
            scope.cancel()
            return
        if not invite.is_finished:
            return
        wait = deadline - self.clock.now()
        if wait <= 0:
            scope.cancel()
        elif self._tg is not None:
            self._tg.start_soon(self._cancel_after, scope, wait, name="callflow send deadline")

    async def _cancel_after(self, scope: _SendScope, seconds: float) -> None:
        await self.clock.sleep(seconds)
        scope.cancel()  # a no-op once the send is over

    # -- callbacks: one ordered lane per call ---------------------------------------------

    def _call(
        self, lane: str | None, name: str, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        if self._tg is None or self._callbacks_pending >= self.callback_limit:
            self._drop(name)
            return
        self._callbacks_pending += 1
        key = lane or ""
        queue = self._lanes.get(key)
        if queue is not None:
            queue.append((fn, args))
            return
        self._lanes[key] = collections.deque([(fn, args)])
        self._tg.start_soon(self._run_lane, key, name=f"callflow lane {key}")

    def _drop(self, name: str) -> None:
        """Count a callback call not made; log when dropping starts (and, later, ends)."""
        self.callbacks_dropped[name] += 1
        if self._tg is None:
            logger.warning("%s not called: the Client is closed", name)
            return
        if not self._dropping:
            logger.warning(
                "callback queue full (%d waiting): dropping %s calls until it drains "
                "(counted in Client.callbacks_dropped)",
                self._callbacks_pending,
                name,
            )
        self._dropping += 1

    def _callback_done(self) -> None:
        self._callbacks_pending -= 1
        if self._dropping and self._callbacks_pending <= self.callback_limit // 2:
            logger.warning(
                "callback queue drained to %d waiting; %d calls were dropped while full",
                self._callbacks_pending,
                self._dropping,
            )
            self._dropping = 0

    async def _run_lane(self, key: str) -> None:
        queue = self._lanes[key]
        try:
            while queue:
                fn, args = queue.popleft()
                try:
                    result = fn(*args)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    name = getattr(fn, "__qualname__", repr(fn))
                    self.callback_errors.append((name, exc))
                    logger.exception("callback %s raised; the invite is unaffected", name)
                finally:
                    self._callback_done()
                await anyio.lowlevel.checkpoint()
        finally:
            self._callbacks_pending -= len(queue)  # cancelled: what waited is not run
            del self._lanes[key]

    # -- deadlines ------------------------------------------------------------------------

    def _arm(self, when: float | None) -> None:
        if when is None:
            return
        planned = self._timer_at
        if planned is None or when < planned:
            self._timer_at = when
            if self._timer_scope is not None:
                self._timer_scope.cancel()
            if self._timer_wake is not None:
                self._timer_wake.set()

    async def _timer_loop(self) -> None:
        board = self.switchboard
        while True:
            now = self.clock.now()
            receipt = board.expire(at=now)
            if receipt.deliveries or receipt.timed_out:
                self._after(receipt)
            self._timer_at = board.next_deadline()
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                if self._timer_at is None:
                    self._timer_wake = anyio.Event()
                    await self._timer_wake.wait()
                else:
                    await self.clock.sleep(self._timer_at - now)
            self._timer_scope = None
            self._timer_wake = None

    async def _release_loop(self) -> None:
        """Release each finished invite from the switchboard once its time is due.

        A task of its own, apart from the deadline timer: the queue is in time order
        (:meth:`_to_release`), so this sleeps until its head is due and is woken (by an
        event, which is cheap, where cancelling a sleep is not) only when the queue was
        empty. Finishing invites never wake the deadline timer.
        """
        finished = self._finished
        board = self.switchboard
        while True:
            if not finished:
                self._release_wake = wake = anyio.Event()
                await wake.wait()
                continue
            now = self.clock.now()
            if finished[0][0] > now:
                await self.clock.sleep(finished[0][0] - now)
                continue
            while finished and finished[0][0] <= now:
                _, invite = finished.popleft()
                board.release(invite)
                self._handles.pop(invite.invite_id, None)
                self._late_listeners.pop(invite.invite_id, None)
                if self.recorder is not None:
                    self._record_result(invite)

    def __repr__(self) -> str:
        state = "open" if self._tg is not None else "closed"
        held = len(self.switchboard) if self._fleet is None else len(self._fleet)
        return f"<Client {state} invites={held} base_url={self.base_url!r}>"
