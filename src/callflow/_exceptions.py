"""callflow's exceptions, one root split by who is to blame.

::

    CallflowError
    ├── ConfigurationError (ValueError) a setting callflow was configured with is invalid
    │                                   (a RetryPolicy, Deadlines, a Switchboard's limits)
    ├── InviteError (ValueError)        the caller asked for an invite Graph would refuse
    │                                   or callflow cannot track (checked before anything is sent)
    ├── NotificationError (ValueError)  a webhook body or Graph JSON that is malformed;
    │                                   the message names the JSON path that is wrong
    ├── WorkflowError (ValueError)      a workflow declaration, input or trace event that
    │                                   is wrong (or participants that do not fit it)
    ├── WebhookAuthError                an inbound callback failed authentication
    ├── StoreError (ValueError)         a store refused what it was asked (``_store.py``)
    │   ├── ClientContextInFlight       the clientContext is held by an invite in flight
    │   └── UnknownInvite               no such invite in the store (never, or expired)
    ├── InviteFailed                    an invite ended in ``failed`` or ``cancelled``
    │                                   (refused, declined, timed out, cancelled, its
    │                                   outcome unknown); ``failure.reason`` says which
    └── RemoveFailed                    the DELETE of a participant could not be done

Errors from libraries underneath (``json.JSONDecodeError``, ``UnicodeDecodeError``) are
translated at the boundary, never leaked. This module imports neither anyio nor httpx: the
sans-I/O core raises these too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core._models import ResultInfo
    from ._core._records import Failure, Step

__all__ = [
    "CallflowError",
    "ConfigurationError",
    "InviteError",
    "NotificationError",
    "WebhookAuthError",
    "InviteFailed",
    "RemoveFailed",
    "WorkflowError",
]


class CallflowError(Exception):
    """The root of every exception callflow raises on purpose."""


class ConfigurationError(CallflowError, ValueError):
    """A configuration value that is invalid (not a bad request: nothing was asked yet)."""


class InviteError(CallflowError, ValueError):
    """An invite request that is invalid: raised before anything is sent."""


class NotificationError(CallflowError, ValueError):
    """A notification body (or other Graph JSON) that is malformed.

    Attributes:
        path: the JSON path of the offending value, such as ``$.value[0].resource``.

    """

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class WebhookAuthError(CallflowError):
    """An inbound callback whose bearer token is missing or invalid.

    Attributes:
        status_code: 401 for a missing or invalid token, 403 for a valid token meant
            for another application or tenant.

    """

    def __init__(self, message: str, *, status_code: int = 401) -> None:
        super().__init__(message)
        self.status_code = status_code


class InviteFailed(CallflowError):
    """An invite that ended in ``failed`` or ``cancelled`` (``failure.reason`` says why).

    Attributes:
        failure: the :class:`callflow.Failure` saying why.
        status_code: the HTTP status of the invite POST, when the service refused it.
        error_code: Graph's ``error.code``, when the service refused the POST.
        error_message: Graph's ``error.message``.
        result_info: the operation's ``resultInfo`` (code, subcode, message), when the
            operation itself failed.
        history: every step the invite took, oldest first.
        client_context: the invite's correlation key.

    """

    def __init__(self, failure: Failure, *, client_context: str, history: tuple[Step, ...]) -> None:
        super().__init__(f"invite {client_context} did not complete: {failure.describe()}")
        self.failure = failure
        self.client_context = client_context
        self.history = history

    @property
    def status_code(self) -> int | None:
        """The HTTP status of the refused POST, if that is why it failed."""
        return self.failure.status_code

    @property
    def error_code(self) -> str | None:
        """Graph's ``error.code``, if the POST was refused."""
        return self.failure.error_code

    @property
    def error_message(self) -> str | None:
        """Graph's ``error.message``, if the POST was refused."""
        return self.failure.error_message

    @property
    def result_info(self) -> ResultInfo | None:
        """The failed operation's ``resultInfo``, if the operation failed."""
        return self.failure.result_info


class RemoveFailed(CallflowError):
    """The DELETE of a participant could not be done; they may still be in the call.

    Attributes:
        call_id: the call.
        participant_id: the participant, or None when no id was known.
        status_code: the last answer's HTTP status, or None when none came.
        reason: in words.

    """

    def __init__(
        self, reason: str, *, call_id: str, participant_id: str | None, status_code: int | None
    ) -> None:
        super().__init__(
            f"could not remove participant {participant_id} from call {call_id}: {reason}"
        )
        self.call_id = call_id
        self.participant_id = participant_id
        self.status_code = status_code
        self.reason = reason


class WorkflowError(CallflowError, ValueError):
    """A workflow declaration, input or trace event that is wrong; the message says where."""
