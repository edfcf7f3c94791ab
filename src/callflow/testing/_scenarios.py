"""The spec's examples as runnable scenarios, and a runner for them.

Theory of operation
-------------------
The package cannot read the spec at run time, so the request bodies of the spec's five
examples are embedded here (a test checks they equal the JSON printed in the spec). A
:class:`Scenario` is one such request plus what the fake service should do with it
(:class:`~callflow.testing.Quirks` that make its notifications look exactly like the
example's, scripted answers, faults) and the outcome callflow should reach.
:func:`run_scenario` plays one against a :class:`~callflow.testing.FakeGraph` and a
:class:`~callflow.Client` on a fresh :class:`~callflow.testing.VirtualClock` and returns
the invite, the trace it recorded, and what the fake saw and sent. ``callflow demo``
runs :data:`SCENARIOS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final

import anyio
import attrs

from .._client import Client
from .._clock import Clock, SystemClock
from .._core._invite import Invite as CoreInvite
from .._core._machine import InviteKind, InviteState
from .._core._records import FailureReason
from .._core._retry import RetryPolicy
from .._exceptions import InviteFailed
from .._ids import Invite
from .._store import MemoryStore, Store
from .._trace import MemoryRecorder
from ._clock import VirtualClock
from ._delivery import Sent
from ._fake import FakeGraph, Received
from ._script import Answer, Answers, Declines, Fault, Quirks, Throttle

__all__ = ["Scenario", "ScenarioResult", "SPEC_REQUESTS", "SCENARIOS", "run_scenario"]

_CONTEXT: Final = "f2fa86af-3c51-4bc2-8fc0-475452d9764f"
_CALL: Final = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
_GROUP_CALL: Final = "7531d31f-d10d-44de-802f-c569dbca451c"
_REPLACED: Final = "a7ebfb2d-871e-419c-87af-27290b22e8db"
_OPERATION_A: Final = "eec3812a-fdc3-4fb4-825c-a06c9f35414e"
_OPERATION_B: Final = "278405a3-f568-4b3e-b684-009193463064"


def _identity(kind: str, **props: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.identitySet",
        kind: {"@odata.type": "#microsoft.graph.identity", **props},
    }


def _invited(identity: dict[str, Any], **props: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.invitationParticipantInfo",
        **props,
        "identity": identity,
    }


def _body(*participants: dict[str, Any]) -> dict[str, Any]:
    return {"participants": list(participants), "clientContext": _CONTEXT}


def _user(user_id: str) -> dict[str, Any]:
    return _identity("user", id=user_id, displayName="string")


#: The request body of each of the spec's examples, exactly as printed.
SPEC_REQUESTS: Final[Mapping[int, Mapping[str, Any]]] = {
    1: _body(_invited(_user("278405a3-f568-4b3e-b684-009193463064"), replacesCallId=_REPLACED)),
    2: _body(
        _invited(_user("7e1b4346-85a6-4bdd-abe3-d11c5d420efe"), replacesCallId=_REPLACED),
        _invited(_user("1e126418-44a0-4a94-a6f8-0efe1ad71acb"), replacesCallId=_REPLACED),
    ),
    3: _body(_invited(_user("7e1b4346-85a6-4bdd-abe3-d11c5d420efe"), replacesCallId=_REPLACED)),
    4: _body(_invited(_identity("phone", id="+12345678901"))),
    5: _body(
        _invited(
            _identity("user", id="682b6c37-0729-4fab-ace6-d730d5d9137e", identityProvider="AAD"),
            replacesCallId=_REPLACED,
            participantId="7d501bf1-5ee4-4605-ba92-0ae4513c611c",
        )
    ),
}


def _echoed(user_id: str) -> dict[str, Any]:
    """A participant as example 2's answer echoes it."""
    user = {"@odata.type": "#microsoft.graph.identity", "id": user_id, "displayName": "string"}
    return {
        "endpointType": None,
        "replacesCallId": None,
        "identity": {"user": user, "application": None, "device": None, "phone": None},
    }


#: Example 2 as callflow can send it: its participants as the spec's answer echoes them.
_EXAMPLE_2_TRACKABLE: Final = _body(
    _echoed("7e1b4346-85a6-4bdd-abe3-d11c5d420efe"),
    _echoed("1e126418-44a0-4a94-a6f8-0efe1ad71acb"),
)


@attrs.frozen(kw_only=True)
class Scenario:
    """One invite to play against the fake service, and the outcome expected of it.

    Attributes:
        name: a short name (``"example 3"``, ``"declined"``).
        title: what it shows.
        call_id: the call invited into.
        request: the request body callflow sends.
        operation_id: the id the fake gives the operation (the spec's), or None.
        quirks: the spec's oddities the fake reproduces for it.
        scripts: ``(identity id, answer)`` pairs for the fake.
        faults: faults queued on the fake before the invite.
        expect: the state the invite should end in.
        expect_reason: for ``failed`` or ``cancelled``, the
            :class:`~callflow.FailureReason` expected.
        timeout: the invite's own deadline per state (``client.invite(timeout=)``).
        note: a remark shown with its result.
        example: the spec's example number, if it is one.

    """

    name: str
    title: str
    call_id: str
    request: Mapping[str, Any]
    operation_id: str | None = None
    quirks: Quirks = Quirks(null_participant_ids=True)
    scripts: tuple[tuple[str, Answer], ...] = ()
    faults: tuple[Fault, ...] = ()
    expect: InviteState = InviteState.completed
    expect_reason: FailureReason | None = None
    timeout: float | None = None
    note: str | None = None
    example: int | None = None

    @property
    def kind(self) -> InviteKind:
        """The kind of invite the request makes."""
        return Invite.from_request(self.call_id, self.request).kind

    @property
    def slug(self) -> str:
        """The name as a file name (``example-3``)."""
        return self.name.replace(" ", "-")


#: The spec's five examples, a declined invite, a throttled one, and one nobody answers in
#: time: cancelled (its DELETE sent) at its deadline.
SCENARIOS: Final[tuple[Scenario, ...]] = (
    Scenario(
        name="example 1",
        title="invite one participant to an existing call (it names a call to replace)",
        call_id=_CALL,
        request=SPEC_REQUESTS[1],
        operation_id=_OPERATION_A,
        example=1,
    ),
    Scenario(
        name="example 2",
        title="invite several participants to a group call",
        call_id=_GROUP_CALL,
        request=_EXAMPLE_2_TRACKABLE,
        operation_id=_OPERATION_A,
        quirks=Quirks(
            operation_prefix="/communications", null_operation_id=True, null_participant_ids=True
        ),
        note=(
            "the spec's request sets replacesCallId on both participants, which callflow "
            "refuses; invited as the spec's answer echoes them (replacesCallId null)"
        ),
        example=2,
    ),
    Scenario(
        name="example 3",
        title="invite one participant, replacing a peer-to-peer call",
        call_id=_CALL,
        request=SPEC_REQUESTS[3],
        operation_id=_OPERATION_B,
        quirks=Quirks(
            roster_prefix="/communications",
            roster_on_replaced_call=True,
            null_participant_ids=True,
        ),
        example=3,
    ),
    Scenario(
        name="example 4",
        title="invite one PSTN participant",
        call_id=_CALL,
        request=SPEC_REQUESTS[4],
        operation_id=_OPERATION_A,
        example=4,
    ),
    Scenario(
        name="example 5",
        title="move one participant from one meeting to another",
        call_id=_CALL,
        request=SPEC_REQUESTS[5],
        operation_id=_OPERATION_B,
        quirks=Quirks(roster_prefix="/communications", null_participant_ids=True),
        example=5,
    ),
    Scenario(
        name="declined",
        title="example 4's PSTN participant declines",
        call_id=_CALL,
        request=SPEC_REQUESTS[4],
        scripts=(("+12345678901", Declines()),),
        expect=InviteState.failed,
        expect_reason=FailureReason.operation_failed,
    ),
    Scenario(
        name="throttled",
        title="example 4's invite answered 429 with Retry-After: 1 first",
        call_id=_CALL,
        request=SPEC_REQUESTS[4],
        faults=(Throttle(retry_after=1),),
        note="429 with Retry-After: 1, sent again after 1 s",
    ),
    Scenario(
        name="unanswered",
        title="example 4's participant would answer at 45 s; cancelled at the 30 s deadline",
        call_id=_CALL,
        request=SPEC_REQUESTS[4],
        quirks=Quirks(),  # the answer carries participants[].id, as the service fills it in
        scripts=(("+12345678901", Answers(after=45.0)),),
        timeout=30.0,
        expect=InviteState.cancelled,
        expect_reason=FailureReason.timeout,
        note="at the deadline callflow sends the DELETE (204): the ring stops, nobody joins",
    ),
)


@attrs.frozen(kw_only=True)
class ScenarioResult:
    """What running a :class:`Scenario` gave.

    Attributes:
        scenario: the scenario.
        invite: the invite, in its final state with its whole history.
        started: the clock's time when the invite was made.
        events: the trace the Client recorded (JSON-ready events).
        requests: what the fake service got.
        sent: what the fake service sent.

    """

    scenario: Scenario
    invite: CoreInvite
    started: float
    events: tuple[dict[str, Any], ...]
    requests: tuple[Received, ...]
    sent: tuple[Sent, ...]

    @property
    def as_expected(self) -> bool:
        """True when the invite ended as the scenario expects."""
        invite, scenario = self.invite, self.scenario
        if invite.state is not scenario.expect:
            return False
        reason = None if invite.failure is None else invite.failure.reason
        return scenario.expect_reason is None or reason is scenario.expect_reason


async def run_scenario(scenario: Scenario, *, store: Store | None = None) -> ScenarioResult:
    """Play one scenario on a fresh virtual clock, until nothing more is sent.

    Runs on whichever anyio backend is current; takes no real time to speak of.

    Args:
        scenario: the scenario.
        store: the Client's store (``callflow demo --store``); None keeps the invite in
            the Client's process, as by default. A store over a socket (Redis) runs the
            scenario on the real clock: the virtual clock's autojump would move time on
            while a Redis answer is on its way, so the timings are then real ones.

    Returns:
        A :class:`ScenarioResult`.

    """
    real = store is not None and not isinstance(store, MemoryStore)
    virtual = VirtualClock()
    clock: Clock = SystemClock() if real else virtual
    recorder = MemoryRecorder()
    ids = () if scenario.operation_id is None else (scenario.operation_id,)
    async with anyio.create_task_group() as tg:
        if not real:
            tg.start_soon(virtual.autojump, name="callflow virtual clock")
        async with (
            # A scenario's faults may keep its invite from ever being taken.
            FakeGraph(
                clock=clock, quirks=scenario.quirks, operation_ids=ids, assert_all_used=False
            ) as fake,
            fake.http_client() as http,
        ):
            for identity_id, answer in scenario.scripts:
                fake.script(identity_id, answer)
            fake.fault(*scenario.faults)
            async with Client(
                http, clock=clock, recorder=recorder, retry=RetryPolicy(jitter=False), store=store
            ) as client:
                fake.deliver_to(client)
                started = client.clock.now()
                handle = await client.invite(
                    scenario.call_id,
                    scenario.request["participants"],
                    client_context=scenario.request.get("clientContext"),
                    timeout=scenario.timeout,
                )
                with contextlib.suppress(InviteFailed):
                    await handle.wait()
                await fake.drain()
        tg.cancel_scope.cancel()
    return ScenarioResult(
        scenario=scenario,
        invite=handle.invite,
        started=started,
        events=tuple(recorder.events),
        requests=tuple(fake.requests),
        sent=tuple(fake.sent),
    )
