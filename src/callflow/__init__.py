"""callflow: each Microsoft Graph participant invite as a state machine.

The core (:class:`Invite`, :class:`Switchboard`, :func:`parse_notifications`) does no I/O
and can be stepped through in a unit test. :class:`Client` drives invites over HTTP with
httpx on an anyio event loop. :mod:`callflow.testing` is a fake Graph service with a
virtual clock; :mod:`callflow.diagrams` draws the machines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from ._auth import TokenValidator
    from ._client import GRAPH_BASE_URL, Client
    from ._clock import Clock, SystemClock
    from ._core._flow_run import FlowResult, FlowStep, InviteRecord, WorkflowRun, replay_workflow
    from ._core._flows import Fate, FlowState, FlowTransition, FlowTrigger, Workflow
    from ._core._machine import InviteKind, InviteState, Trigger
    from ._core._models import (
        Identity,
        IdentitySet,
        InvitationParticipantInfo,
        InviteParticipantsOperation,
        MediaStream,
        OperationStatus,
        Participant,
        ParticipantInfo,
        RemovedState,
        ResultInfo,
    )
    from ._core._notifications import CommsNotification, NotificationKind, parse_notifications
    from ._core._records import Failure, FailureReason, HttpRequest, Outcome, Step
    from ._core._retry import RetryPolicy
    from ._core._switchboard import Deadlines, Delivery, DeliveryOutcome, Receipt, Switchboard
    from ._exceptions import (
        CallflowError,
        ConfigurationError,
        InviteError,
        InviteFailed,
        NotificationError,
        RemoveFailed,
        WebhookAuthError,
        WorkflowError,
    )
    from ._flow_engine import InviteInto, WorkflowHandle
    from ._handle import InviteHandle
    from ._ids import Invite
    from ._redis import RedisStore
    from ._store import (
        Change,
        ClientContextInFlight,
        MemoryStore,
        Snapshot,
        Store,
        StoreError,
        UnknownInvite,
    )
    from ._tokens import GRAPH_SCOPE, Cloud, TokenCredential, TokenSource
    from ._trace import (
        JsonlRecorder,
        MemoryRecorder,
        Recorder,
        RedactingRecorder,
        TraceError,
        read_trace,
        replay,
    )
    from ._webhook import webhook_app


__version__ = "0.1.0"

__all__ = [
    # the core
    "Invite",
    "InviteKind",
    "InviteState",
    "Trigger",
    "Step",
    "Failure",
    "FailureReason",
    "Outcome",
    "HttpRequest",
    "Switchboard",
    "Deadlines",
    "Delivery",
    "DeliveryOutcome",
    "Receipt",
    # the engine
    "Client",
    "InviteHandle",
    "RetryPolicy",
    "Clock",
    "SystemClock",
    "TokenSource",
    "TokenCredential",
    "TokenValidator",
    "webhook_app",
    "GRAPH_BASE_URL",
    "GRAPH_SCOPE",
    "Cloud",
    # workflows
    "Workflow",
    "FlowState",
    "FlowTransition",
    "FlowTrigger",
    "Fate",
    "WorkflowRun",
    "FlowStep",
    "FlowResult",
    "InviteRecord",
    "WorkflowHandle",
    "InviteInto",
    "WorkflowError",
    "replay_workflow",
    # traces
    "Recorder",
    "MemoryRecorder",
    "JsonlRecorder",
    "RedactingRecorder",
    "TraceError",
    "read_trace",
    "replay",
    # stores: where invites live (a fleet shares one)
    "Store",
    "MemoryStore",
    "RedisStore",
    "Snapshot",
    "Change",
    # notifications
    "parse_notifications",
    "CommsNotification",
    "NotificationKind",
    # Graph models
    "Identity",
    "IdentitySet",
    "InvitationParticipantInfo",
    "InviteParticipantsOperation",
    "MediaStream",
    "OperationStatus",
    "Participant",
    "ParticipantInfo",
    "RemovedState",
    "ResultInfo",
    # errors
    "CallflowError",
    "ConfigurationError",
    "InviteError",
    "NotificationError",
    "InviteFailed",
    "RemoveFailed",
    "WebhookAuthError",
    "StoreError",
    "ClientContextInFlight",
    "UnknownInvite",
]

#: Where each public name lives. ``import callflow`` loads none of them: a name's module is
#: imported when the name is first used, so the sans-I/O core (``Invite``, ``Switchboard``)
#: runs without loading anyio or httpx.
_LAZY: dict[str, str] = {
    "RedisStore": "._redis",
    "Store": "._store",
    "MemoryStore": "._store",
    "Snapshot": "._store",
    "Change": "._store",
    "StoreError": "._store",
    "ClientContextInFlight": "._store",
    "UnknownInvite": "._store",
    "TokenValidator": "._auth",
    "GRAPH_BASE_URL": "._client",
    "Client": "._client",
    "Clock": "._clock",
    "SystemClock": "._clock",
    "Invite": "._ids",
    "FlowResult": "._core._flow_run",
    "FlowStep": "._core._flow_run",
    "InviteRecord": "._core._flow_run",
    "WorkflowRun": "._core._flow_run",
    "replay_workflow": "._core._flow_run",
    "Fate": "._core._flows",
    "FlowState": "._core._flows",
    "FlowTransition": "._core._flows",
    "FlowTrigger": "._core._flows",
    "Workflow": "._core._flows",
    "WorkflowError": "._exceptions",
    "InviteInto": "._flow_engine",
    "WorkflowHandle": "._flow_engine",
    "InviteKind": "._core._machine",
    "InviteState": "._core._machine",
    "Trigger": "._core._machine",
    "Identity": "._core._models",
    "IdentitySet": "._core._models",
    "InvitationParticipantInfo": "._core._models",
    "InviteParticipantsOperation": "._core._models",
    "MediaStream": "._core._models",
    "OperationStatus": "._core._models",
    "Participant": "._core._models",
    "ParticipantInfo": "._core._models",
    "RemovedState": "._core._models",
    "ResultInfo": "._core._models",
    "CommsNotification": "._core._notifications",
    "NotificationKind": "._core._notifications",
    "parse_notifications": "._core._notifications",
    "Failure": "._core._records",
    "FailureReason": "._core._records",
    "HttpRequest": "._core._records",
    "Outcome": "._core._records",
    "Step": "._core._records",
    "RetryPolicy": "._core._retry",
    "Deadlines": "._core._switchboard",
    "Delivery": "._core._switchboard",
    "DeliveryOutcome": "._core._switchboard",
    "Receipt": "._core._switchboard",
    "Switchboard": "._core._switchboard",
    "CallflowError": "._exceptions",
    "ConfigurationError": "._exceptions",
    "InviteError": "._exceptions",
    "InviteFailed": "._exceptions",
    "NotificationError": "._exceptions",
    "RemoveFailed": "._exceptions",
    "WebhookAuthError": "._exceptions",
    "InviteHandle": "._handle",
    "GRAPH_SCOPE": "._tokens",
    "Cloud": "._tokens",
    "TokenCredential": "._tokens",
    "TokenSource": "._tokens",
    "JsonlRecorder": "._trace",
    "RedactingRecorder": "._trace",
    "MemoryRecorder": "._trace",
    "Recorder": "._trace",
    "TraceError": "._trace",
    "read_trace": "._trace",
    "replay": "._trace",
    "webhook_app": "._webhook",
}


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'callflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
