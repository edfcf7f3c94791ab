"""Testing support: a virtual clock, a fake Graph calls service, the spec's scenarios.

Like ``stamina.set_testing`` and ``structlog.testing``, this is part of the library: bot
developers test their own calling logic against it, deterministically, with no tenant
and no sleeping. The pytest plugin (installed with callflow) provides the fixtures
``virtual_clock``, ``fake_graph`` and ``callflow_client``.

The wire builders (:func:`operation_notification`, :func:`roster_notification`,
:func:`call_state_notification`, ...) make the JSON the service sends, so a step-through
test of :class:`~callflow.Invite` or :class:`~callflow.Switchboard` need not hand-write it::

    op = Operation(id="op-1", call_id=CALL_ID, client_context="ctx", participants=[PSTN])
    receipt = switchboard.receive(operation_notification(op), at=1.0)
"""

from ._clock import VirtualClock
from ._delivery import NotificationSink, Outgoing, Sent
from ._fake import CANCELLED_INFO, FOLLOW_UP, AfterDelete, FakeGraph, Received, ScriptsNotUsed
from ._scenarios import SCENARIOS, SPEC_REQUESTS, Scenario, ScenarioResult, run_scenario
from ._script import (
    LABELS,
    Accepts,
    Answer,
    Answers,
    Declines,
    DelayNotifications,
    DropAfterTaking,
    DropBeforeSending,
    DropNotifications,
    DuplicateNotifications,
    FailAfterTaking,
    Fault,
    HttpFault,
    NeverAnswers,
    NotificationFault,
    NotifyBeforeAnswer,
    Quirks,
    Refuse,
    ReorderNotifications,
    SlowAnswer,
    Throttle,
)
from ._spec_flows import spec_flows
from ._wire import (
    Operation,
    call_deleted_notification,
    call_state_notification,
    call_terminated_notification,
    envelope,
    error_body,
    operation_notification,
    participant_removed_notification,
    response_body,
    roster_notification,
)

__all__ = [
    "spec_flows",
    # time
    "VirtualClock",
    # the fake service
    "FakeGraph",
    "NotificationSink",
    "Operation",
    "Received",
    "Outgoing",
    "Sent",
    "Quirks",
    "LABELS",
    "FOLLOW_UP",
    "AfterDelete",
    "CANCELLED_INFO",
    "ScriptsNotUsed",
    # how participants answer
    "Answer",
    "Accepts",
    "Answers",
    "Declines",
    "NeverAnswers",
    # faults
    "Fault",
    "HttpFault",
    "Throttle",
    "Refuse",
    "FailAfterTaking",
    "DropBeforeSending",
    "DropAfterTaking",
    "SlowAnswer",
    "NotificationFault",
    "DropNotifications",
    "DuplicateNotifications",
    "ReorderNotifications",
    "DelayNotifications",
    "NotifyBeforeAnswer",
    # the wire: what the service sends, for step-through tests
    "response_body",
    "error_body",
    "envelope",
    "operation_notification",
    "roster_notification",
    "call_state_notification",
    "call_terminated_notification",
    "call_deleted_notification",
    "participant_removed_notification",
    # the spec's scenarios
    "Scenario",
    "ScenarioResult",
    "SCENARIOS",
    "SPEC_REQUESTS",
    "run_scenario",
]
