"""What a test tells the fake Graph service: how participants answer, and what goes wrong.

Theory of operation
-------------------
Everything here is a frozen value object; :class:`~callflow.testing.FakeGraph` reads them
and nothing else. There are three families:

* **Answers** say what one invited participant does: :class:`Accepts` (the default),
  :class:`Declines`, :class:`NeverAnswers`. They are given per identity id with
  :meth:`FakeGraph.script <callflow.testing.FakeGraph.script>`. The operation of a
  multi-participant invite ends as its first participant that does not accept (in request
  order) says, or completes when the slowest one accepts.
* **HTTP faults** change the answer to the invite POST. They are taken one per POST, in
  the order given, each for its next ``times`` POSTs: :class:`Throttle` (429, nothing
  taken), :class:`Refuse` (an error, nothing taken), :class:`FailAfterTaking` (the
  operation runs and notifies, but the answer is an error), :class:`DropBeforeSending`
  (``httpx.ConnectError``, nothing taken), :class:`DropAfterTaking` (``httpx.ReadError``,
  the operation runs), :class:`SlowAnswer` (a virtual-time delay before the answer).
* **Notification faults** change the notifications of an operation. Every queued one
  applies to each new operation, each for its next ``times`` operations, in this order:
  :class:`DropNotifications`, :class:`DuplicateNotifications`,
  :class:`ReorderNotifications`, :class:`DelayNotifications`, :class:`NotifyBeforeAnswer`.

:class:`Quirks` switches on the spec's own oddities, so the fake can be made to send
exactly what an example prints.

The notifications of an operation carry a label, which faults select by (``only=``):

=======================  ==============================================================
label                    notification
=======================  ==============================================================
``operation``            the operation's completion or failure (always sent)
``roster``               the roster update with the participants added (on success)
``original_terminated``  replace_p2p: the original call updated with state terminated
``original_deleted``     replace_p2p: the original call deleted
``participant_removed``  move_meeting: the participant deleted from the source meeting
``source_roster``        move_meeting: the source meeting's roster, with a removedState
=======================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

import attrs

__all__ = [
    "Accepts",
    "Answers",
    "Declines",
    "NeverAnswers",
    "Answer",
    "Throttle",
    "Refuse",
    "FailAfterTaking",
    "DropBeforeSending",
    "DropAfterTaking",
    "SlowAnswer",
    "HttpFault",
    "DropNotifications",
    "DuplicateNotifications",
    "ReorderNotifications",
    "DelayNotifications",
    "NotifyBeforeAnswer",
    "NotificationFault",
    "Fault",
    "Quirks",
    "LABELS",
]

#: The labels of the notifications an operation produces, in the order they are sent.
LABELS: Final = (
    "operation",
    "roster",
    "original_terminated",
    "original_deleted",
    "participant_removed",
    "source_roster",
)


def _not_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be a non-negative number of seconds, not {value}")


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, not {value}")


def _error_status(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 400 <= value <= 599:
        raise ValueError(f"{attribute.name} must be an HTTP error status (4xx or 5xx), not {value}")


def _labels(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    labels = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(labels - set(LABELS))
    if unknown:
        raise ValueError(f"unknown notification labels {unknown}: choose from {', '.join(LABELS)}")
    return labels


# -- answers ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Accepts:
    """The participant answers ``after`` seconds of ringing; the operation completes.

    Attributes:
        after: seconds from the POST to the answer.

    """

    after: float = attrs.field(default=2.0, validator=_not_negative)


@attrs.frozen(kw_only=True)
class Declines:
    """The participant declines; the operation fails with this ``resultInfo``.

    The default code is SIP's 603 (Decline); pass the code, subcode and message your
    bot must handle.

    Attributes:
        code: ``resultInfo.code``.
        subcode: ``resultInfo.subcode``.
        message: ``resultInfo.message``.
        after: seconds from the POST to the decline.

    """

    code: int = 603
    subcode: int = 0
    message: str = "The participant declined the call."
    after: float = attrs.field(default=2.0, validator=_not_negative)


@attrs.frozen(kw_only=True)
class NeverAnswers:
    """Nobody answers: the service itself fails the operation after its ring timeout.

    The timeout is :class:`~callflow.testing.FakeGraph`'s ``ring_timeout`` (60 s by
    default, shorter than callflow's own 90 s deadline for ``running``).

    Attributes:
        code: ``resultInfo.code`` of the failure.
        subcode: ``resultInfo.subcode``.
        message: ``resultInfo.message``.

    """

    code: int = 408
    subcode: int = 0
    message: str = "The participant did not answer before the ring timeout."


#: ``Answers(after=45.0)``: the participant answers 45 s after the POST (the same as
#: :class:`Accepts`; read it as "answers at 45 s" on the fake's virtual clock).
Answers = Accepts

#: What one invited participant does.
Answer = Accepts | Declines | NeverAnswers


# -- HTTP faults -----------------------------------------------------------------------------


@attrs.frozen
class Throttle:
    """Answer 429 with ``Retry-After``; the invite is not taken.

    Attributes:
        retry_after: seconds for the ``Retry-After`` header; None sends no header.
        times: how many POSTs in a row get it.

    """

    retry_after: float | None = 1.0
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class Refuse:
    """Answer an error such as 500 with Graph's error body; the invite is not taken.

    Attributes:
        status: the HTTP status.
        code: ``error.code`` of the body.
        message: ``error.message`` of the body.
        times: how many POSTs in a row get it.

    """

    status: int = attrs.field(default=500, validator=_error_status)
    code: str = "InternalServerError"
    message: str = "The service failed to process the request."
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class FailAfterTaking:
    """Take the invite (the operation runs and notifies) but answer an error, such as 503.

    This is the gateway that gave up after forwarding the request: the caller cannot
    tell whether the invite was taken.

    Attributes:
        status: the HTTP status.
        times: how many POSTs in a row get it.

    """

    status: int = attrs.field(default=503, validator=_error_status)
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class DropBeforeSending:
    """Raise ``httpx.ConnectError``: the request never left; nothing is taken.

    Attributes:
        times: how many POSTs in a row get it.

    """

    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class DropAfterTaking:
    """Take the invite, then raise ``httpx.ReadError``: the answer is lost on the way back.

    Attributes:
        times: how many POSTs in a row get it.

    """

    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class SlowAnswer:
    """Take the invite and answer 200 only after ``delay`` seconds (on the fake's clock).

    Attributes:
        delay: the seconds the answer takes.
        times: how many POSTs in a row get it.

    """

    delay: float = attrs.field(validator=_not_negative)
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


#: Changes the answer to one invite POST.
HttpFault = Throttle | Refuse | FailAfterTaking | DropBeforeSending | DropAfterTaking | SlowAnswer


# -- notification faults ----------------------------------------------------------------------


@attrs.frozen
class DropNotifications:
    """Never send the selected notifications (all of them by default).

    Attributes:
        only: the labels to drop (a label or several); None for all.
        times: for how many operations.

    """

    only: frozenset[str] | None = attrs.field(default=None, kw_only=True, converter=_labels)
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class DuplicateNotifications:
    """Send the selected notifications twice, the copy right after the original.

    Attributes:
        only: the labels to duplicate; None for all.
        times: for how many operations.

    """

    only: frozenset[str] | None = attrs.field(default=None, kw_only=True, converter=_labels)
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class ReorderNotifications:
    """Send an operation's notifications in reverse order (at the same instants).

    Attributes:
        times: for how many operations.

    """

    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class DelayNotifications:
    """Send the selected notifications ``seconds`` later than the service would.

    Attributes:
        seconds: the extra delay.
        only: the labels to delay; None for all.
        times: for how many operations.

    """

    seconds: float = attrs.field(validator=_not_negative)
    only: frozenset[str] | None = attrs.field(default=None, kw_only=True, converter=_labels)
    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


@attrs.frozen
class NotifyBeforeAnswer:
    """Send all of an operation's notifications before the HTTP answer to its POST.

    Attributes:
        times: for how many operations.

    """

    times: int = attrs.field(default=1, kw_only=True, validator=_positive)


#: Changes the notifications of one operation.
NotificationFault = (
    DropNotifications
    | DuplicateNotifications
    | ReorderNotifications
    | DelayNotifications
    | NotifyBeforeAnswer
)

#: Anything :meth:`FakeGraph.fault <callflow.testing.FakeGraph.fault>` takes.
Fault = HttpFault | NotificationFault

Prefix = Literal["/app", "/communications"]


@attrs.frozen(kw_only=True)
class Quirks:
    """The spec's oddities, on or off; the defaults send what examples 1 and 4 print.

    One difference: by default each participant has an id where the spec prints ``null``
    (see ``null_participant_ids``).

    Attributes:
        operation_prefix: how the operation notification's ``resource`` starts
            (``resourceUrl`` always starts ``/communications``). Example 2 uses
            ``/communications``.
        roster_prefix: the same for the roster update. Examples 3 and 5 use
            ``/communications``.
        null_operation_id: example 2's quirk: the completion carries ``"id": null``
            and, like the roster that follows it, names ``.../operations/participants``.
        roster_on_replaced_call: example 3's quirk: the roster update names the
            replaced call (``replacesCallId``) rather than the call invited into.
        null_participant_ids: every example's quirk: the answer's ``participants[].id``
            and the roster entries' ``id`` are ``null``. Off by default: the fake gives
            each invited participant an id, as a cancel (the DELETE) needs one.

    """

    operation_prefix: Prefix = attrs.field(
        default="/app", validator=attrs.validators.in_(("/app", "/communications"))
    )
    roster_prefix: Prefix = attrs.field(
        default="/app", validator=attrs.validators.in_(("/app", "/communications"))
    )
    null_operation_id: bool = False
    roster_on_replaced_call: bool = False
    null_participant_ids: bool = False
