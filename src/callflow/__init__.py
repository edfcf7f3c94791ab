"""callflow: each Microsoft Graph participant invite as a state machine.

The core (:class:`Invite`, :class:`Switchboard`, :func:`parse_notifications`) does no I/O
and can be stepped through in a unit test. :class:`Client` drives invites over HTTP with
httpx on an anyio event loop. :mod:`callflow.testing` is a fake Graph service with a
virtual clock; :mod:`callflow.diagrams` draws the machines.
"""

from ._auth import TokenValidator
from ._client import GRAPH_BASE_URL, Client
from ._clock import Clock, SystemClock
from ._core._invite import Invite
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
    InviteError,
    InviteFailed,
    NotificationError,
    WebhookAuthError,
)
from ._handle import InviteHandle
from ._tokens import GRAPH_SCOPE, TokenCredential, TokenSource
from ._trace import JsonlRecorder, MemoryRecorder, Recorder, TraceError, read_trace, replay
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
    # traces
    "Recorder",
    "MemoryRecorder",
    "JsonlRecorder",
    "TraceError",
    "read_trace",
    "replay",
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
    "InviteError",
    "NotificationError",
    "InviteFailed",
    "WebhookAuthError",
]
