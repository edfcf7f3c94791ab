"""Testing support: a virtual clock, a fake Graph calls service, the spec's scenarios.

Like ``stamina.set_testing`` and ``structlog.testing``, this is part of the library: bot
developers test their own calling logic against it, deterministically, with no tenant
and no sleeping. The pytest plugin (installed with callflow) provides the fixtures
``virtual_clock``, ``fake_graph`` and ``callflow_client``.
"""

from ._clock import VirtualClock
from ._delivery import NotificationSink, Outgoing, Sent
from ._fake import FOLLOW_UP, FakeGraph, Received
from ._scenarios import SCENARIOS, SPEC_REQUESTS, Scenario, ScenarioResult, run_scenario
from ._script import (
    LABELS,
    Accepts,
    Answer,
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
from ._wire import Operation

__all__ = [
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
    # how participants answer
    "Answer",
    "Accepts",
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
    # the spec's scenarios
    "Scenario",
    "ScenarioResult",
    "SCENARIOS",
    "SPEC_REQUESTS",
    "run_scenario",
]
