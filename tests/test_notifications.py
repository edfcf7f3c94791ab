"""parse_notifications: every spec notification classified by content; malformed bodies refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow import (
    CommsNotification,
    NotificationError,
    NotificationKind,
    OperationStatus,
    parse_notifications,
)
from callflow._core._notifications import MAX_BODY_BYTES, MAX_NOTIFICATIONS
from spec_examples import Example, examples

Body = dict[str, Any]


def only(body: Any) -> CommsNotification:
    (notification,) = parse_notifications(body)
    return notification


def summary(n: CommsNotification) -> tuple[Any, ...]:
    return (n.kind, n.call_id, n.operation_id, n.client_context, n.status, n.participant_id)


def spec_notification(example: int, which: str) -> Body:
    chosen = examples()[example]
    return copy.deepcopy(chosen.completed if which == "completed" else chosen.roster)


def edited(body: Body, **changes: Any) -> Body:
    """A copy of a one-notification body with keys of that notification replaced."""
    body = copy.deepcopy(body)
    body["value"][0].update(changes)
    return body


def edited_data(body: Body, **changes: Any) -> Body:
    """A copy of a one-notification body with keys of its resourceData replaced."""
    body = copy.deepcopy(body)
    body["value"][0]["resourceData"].update(changes)
    return body


# -- the spec's notifications ---------------------------------------------------------------

# (example, notification, kind, whose call id, whose operation id): ids are read from the spec
SPEC_CASES = [
    (1, "completed", NotificationKind.operation, "call", "response"),
    (1, "roster", NotificationKind.roster, "call", None),
    # completion on .../operations/participants with "id": null
    (2, "completed", NotificationKind.operation, "call", None),
    # a roster on .../operations/participants
    (2, "roster", NotificationKind.roster, "call", None),
    (3, "completed", NotificationKind.operation, "call", "response"),
    # a roster naming the replaced call
    (3, "roster", NotificationKind.roster, "replaced", None),
    (4, "completed", NotificationKind.operation, "call", "response"),
    (4, "roster", NotificationKind.roster, "call", None),
    (5, "completed", NotificationKind.operation, "call", "response"),
    (5, "roster", NotificationKind.roster, "call", None),
]


@pytest.mark.parametrize(
    ("number", "which", "kind", "call", "operation"),
    SPEC_CASES,
    ids=[f"example{c[0]}-{c[1]}" for c in SPEC_CASES],
)
def test_every_spec_notification_is_classified_by_its_content(
    spec: dict[int, Example],
    number: int,
    which: str,
    kind: NotificationKind,
    call: str,
    operation: str | None,
) -> None:
    example = spec[number]
    call_id = (
        example.call_id if call == "call" else example.request["participants"][0]["replacesCallId"]
    )
    operation_id = example.response["id"] if operation == "response" else None
    context = example.request["clientContext"] if kind is NotificationKind.operation else None
    status = OperationStatus.completed if kind is NotificationKind.operation else None

    notification = only(spec_notification(number, which))

    assert (kind, call_id, operation_id, context, status, None) == summary(notification)


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("which", ["completed", "roster"])
def test_app_and_communications_paths_give_the_same_call_id(number: int, which: str) -> None:
    body = spec_notification(number, which)
    url = body["value"][0]["resourceUrl"]
    on_app = edited(body, resource=url.replace("/communications/", "/app/", 1))
    on_communications = edited(body, resource=url)

    assert summary(only(on_app)) == summary(only(on_communications))


def test_a_full_graph_url_names_the_same_call() -> None:
    body = spec_notification(4, "roster")
    path = body["value"][0]["resourceUrl"]
    full = edited(body, resource=f"https://graph.microsoft.com/v1.0{path}")

    assert summary(only(body)) == summary(only(full))


def test_the_operation_id_comes_from_the_path_when_the_body_has_none() -> None:
    body = spec_notification(4, "completed")
    del body["value"][0]["resourceData"]["id"]

    assert examples()[4].response["id"] == only(body).operation_id


def test_a_notification_keeps_its_json_exactly(spec: dict[int, Example]) -> None:
    notification = only(spec[1].completed)

    assert spec[1].completed["value"][0] == notification.to_json()


def test_the_operation_model_is_built_from_resource_data(spec: dict[int, Example]) -> None:
    notification = only(spec[1].completed)

    assert notification.operation is not None
    assert spec[1].completed["value"][0]["resourceData"] == notification.operation.to_json()


def test_the_roster_models_are_built_from_resource_data(spec: dict[int, Example]) -> None:
    notification = only(spec[2].roster)

    assert spec[2].roster["value"][0]["resourceData"] == [
        p.to_json() for p in notification.participants
    ]


@pytest.mark.parametrize("how", ["deleted", "terminated"])
def test_a_call_deleted_or_terminated_is_call_ended(
    spec: dict[int, Example], call_gone: Callable[[str, str], Body], how: str
) -> None:
    call_id = spec[1].call_id

    assert (NotificationKind.call_ended, call_id) == summary(only(call_gone(call_id, how)))[:2]


def test_a_call_update_that_is_not_its_end_is_call_updated(
    call_gone: Callable[[str, str], Body],
) -> None:
    assert NotificationKind.call_updated == only(call_gone("c1", "established")).kind


def test_a_participant_deleted_names_the_participant(
    spec: dict[int, Example], participant_deleted: Callable[[str, str], Body]
) -> None:
    first = spec[5].request["participants"][0]
    body = participant_deleted(first["replacesCallId"], first["participantId"])

    expected = (NotificationKind.participant_deleted, first["replacesCallId"], None, None, None)
    assert (*expected, first["participantId"]) == summary(only(body))


def test_an_unknown_resource_is_returned_as_unrecognised() -> None:
    presence = "/communications/presences/u1"
    body = edited(spec_notification(1, "roster"), resource=presence, resourceUrl=presence)

    assert [NotificationKind.unrecognised] == [n.kind for n in parse_notifications(body)]


def test_another_operation_type_is_returned_as_unrecognised() -> None:
    body = edited_data(
        spec_notification(1, "completed"), **{"@odata.type": "#microsoft.graph.playPromptOperation"}
    )

    assert [NotificationKind.unrecognised] == [n.kind for n in parse_notifications(body)]


def test_an_untyped_operation_on_an_operations_path_is_an_operation() -> None:
    body = spec_notification(4, "completed")
    del body["value"][0]["resourceData"]["@odata.type"]

    assert NotificationKind.operation == only(body).kind


def test_every_notification_of_a_body_is_returned_in_order(spec: dict[int, Example]) -> None:
    items = [spec[4].completed["value"][0], spec[4].roster["value"][0], spec[3].roster["value"][0]]

    parsed = parse_notifications({"value": items})

    assert items == [n.to_json() for n in parsed]


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: json.dumps(b).encode(),
        lambda b: bytearray(json.dumps(b).encode()),
        lambda b: memoryview(json.dumps(b).encode()),
        json.dumps,
        lambda b: b,
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "mapping"],
)
@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_bytes_str_and_mapping_input_give_the_same_notifications(
    encode: Callable[[Body], Any], number: int
) -> None:
    body = {
        "value": [
            *spec_notification(number, "completed")["value"],
            *examples()[number].roster["value"],
        ]
    }

    assert [summary(n) for n in parse_notifications(body)] == [
        summary(n) for n in parse_notifications(encode(body))
    ]


def test_one_notification_mapping_without_an_envelope_is_accepted(
    spec: dict[int, Example],
) -> None:
    assert summary(only(spec[4].completed)) == summary(only(spec[4].completed["value"][0]))


def test_a_description_says_kind_change_resource_and_status(spec: dict[int, Example]) -> None:
    item = spec[4].completed["value"][0]

    assert f"operation deleted {item['resource']} (completed)" == only(item).describe()


# -- malformed bodies -----------------------------------------------------------------------

_OP = "/communications/calls/c1/operations/o1"
_DEEP = b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

MALFORMED: list[tuple[str, Any, str, str]] = [
    ("invalid JSON", b'{"value": [', "$", "invalid JSON at line 1 column 12"),
    ("not UTF-8", b'{"value": [], "x": "\xff"}', "$", "not UTF-8"),
    ("not an object", b"[]", "$", "expected an object, got array"),
    ("missing value", {"@odata.type": "x"}, "$", "missing 'value'"),
    ("value not a list", {"value": {}}, "$.value", "expected an array, got object"),
    ("notification not an object", {"value": [1]}, "$.value[0]", "expected an object, got number"),
    (
        "changeType missing",
        {"value": [{"resource": _OP}]},
        "$.value[0].changeType",
        "expected a string, got null",
    ),
    (
        "resource not a string",
        {"value": [{"changeType": "deleted", "resource": ["x"]}]},
        "$.value[0].resource",
        "expected a string, got array",
    ),
    (
        "resourceUrl not a string",
        {"value": [{"changeType": "deleted", "resource": _OP, "resourceUrl": 1}]},
        "$.value[0].resourceUrl",
        "expected a string, got number",
    ),
    (
        "resourceData a number",
        {"value": [{"changeType": "deleted", "resource": _OP, "resourceData": 3}]},
        "$.value[0].resourceData",
        "expected an object, an array or null, got number",
    ),
    (
        "status not a string",
        {"value": [{"changeType": "deleted", "resource": _OP, "resourceData": {"status": 2}}]},
        "$.value[0].resourceData.status",
        "expected a string, got number",
    ),
    (
        "clientContext not a string",
        {
            "value": [
                {
                    "changeType": "deleted",
                    "resource": _OP,
                    "resourceData": {"status": "completed", "clientContext": {}},
                }
            ]
        },
        "$.value[0].resourceData.clientContext",
        "expected a string, got object",
    ),
    (
        "@odata.type not a string",
        {"value": [{"changeType": "x", "resource": _OP, "resourceData": {"@odata.type": 1}}]},
        "$.value[0].resourceData.@odata.type",
        "expected a string, got number",
    ),
    (
        "call state not a string",
        {"value": [{"changeType": "x", "resource": "/app/calls/c1", "resourceData": {"state": 1}}]},
        "$.value[0].resourceData.state",
        "expected a string, got number",
    ),
    (
        "roster entry not an object",
        {
            "value": [
                {
                    "changeType": "x",
                    "resource": "/app/calls/c/participants",
                    "resourceData": [{}, 1],
                }
            ]
        },
        "$.value[0].resourceData[1]",
        "expected an object, got number",
    ),
    ("body over the size limit", b" " * (MAX_BODY_BYTES + 1), "$", "over the limit"),
    (
        "too many notifications",
        {"value": [{}] * (MAX_NOTIFICATIONS + 1)},
        "$.value",
        f"{MAX_NOTIFICATIONS + 1} notifications is over the limit of {MAX_NOTIFICATIONS}",
    ),
    ("deeply nested JSON", _DEEP, "$", "nested too deeply"),
    ("an integer too long to convert", b'{"value": [], "n": ' + b"1" * 5000 + b"}", "$", "JSON"),
]


@pytest.mark.parametrize(
    ("body", "path", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_body_raises_notification_error_naming_problem_and_path(
    body: Any, path: str, reason: str
) -> None:
    with pytest.raises(NotificationError) as caught:
        parse_notifications(body)

    assert (path, True) == (caught.value.path, str(caught.value).startswith(f"{path}: "))
    assert reason in caught.value.reason


def test_notification_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        parse_notifications(b"{")


def test_max_bytes_is_configurable(spec: dict[int, Example]) -> None:
    body = json.dumps(spec[1].completed).encode()

    with pytest.raises(NotificationError, match=f"body of {len(body)} bytes is over the limit"):
        parse_notifications(body, max_bytes=len(body) - 1)


@pytest.mark.parametrize(
    ("attribute", "which", "changes", "path"),
    [
        ("operation", "completed", {"resultInfo": "no"}, "$.value[0].resourceData.resultInfo"),
        ("participants", "roster", {"isMuted": "no"}, "$.value[0].resourceData[0].isMuted"),
    ],
)
def test_a_wrong_type_inside_a_nested_model_raises_with_its_path_when_read(
    attribute: str, which: str, changes: Body, path: str
) -> None:
    body = spec_notification(4, which)
    data = body["value"][0]["resourceData"]
    (data if isinstance(data, dict) else data[0]).update(changes)
    notification = only(body)

    with pytest.raises(NotificationError) as caught:
        getattr(notification, attribute)

    assert path == caught.value.path


# -- anything at all ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
resources = st.sampled_from(
    [
        "/app/calls/c1",
        "/communications/calls/c1/participants",
        "/communications/calls/c1/participants/p1",
        "/app/calls/c1/operations/o1",
        "/communications/calls/c1/operations/participants",
        "https://graph.microsoft.com/v1.0/communications/calls/c1",
        "/communications/presences/u1",
    ]
)
operation_data = st.fixed_dictionaries(
    {},
    optional={
        "@odata.type": st.sampled_from(["#microsoft.graph.inviteParticipantsOperation", "#x"])
        | json_values,
        "status": st.sampled_from(["Running", "completed", "failed", "notStarted"]) | json_values,
        "id": st.text() | json_values,
        "clientContext": st.text() | json_values,
        "resultInfo": st.fixed_dictionaries({}, optional={"code": json_values}) | json_values,
        "participants": json_values,
        "state": st.sampled_from(["terminated", "established"]) | json_values,
    },
)
notification_like = st.fixed_dictionaries(
    {},
    optional={
        "changeType": st.sampled_from(["created", "updated", "deleted"]) | json_values,
        "resource": resources | json_values,
        "resourceUrl": resources | json_values,
        "resourceData": operation_data | st.lists(json_values | operation_data) | json_values,
    },
)
bodies = json_values | st.fixed_dictionaries(
    {"value": st.lists(notification_like | json_values, max_size=4) | json_values}
)


def _read_everything(parsed: tuple[CommsNotification, ...]) -> None:
    for n in parsed:
        for attribute in ("operation", "participants", "result_info", "fingerprint"):
            try:
                getattr(n, attribute)
            except NotificationError:
                continue
        n.describe()
        n.to_json()


@settings(deadline=None)
@given(bodies)
def test_any_json_value_parses_or_raises_notification_error(body: Any) -> None:
    for form in (body, json.dumps(body), json.dumps(body).encode()):
        try:
            parsed = parse_notifications(form)
        except NotificationError:
            continue
        assert isinstance(parsed, tuple)
        _read_everything(parsed)


@settings(deadline=None)
@given(st.binary() | st.text())
def test_any_bytes_or_text_parse_or_raise_notification_error(body: bytes | str) -> None:
    try:
        parsed = parse_notifications(body)
    except NotificationError:
        return
    assert isinstance(parsed, tuple)
    _read_everything(parsed)
