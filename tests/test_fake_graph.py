"""FakeGraph against the spec: what it answers and sends is shaped like the spec's JSON.

Each example's request is sent to the fake with the example's quirks; its answer and its
notifications are compared with the JSON the spec prints (loaded from the spec file by
:mod:`spec_examples`): every property the spec shows is there with a value of the same
JSON type, and the paths, ids and statuses callflow routes on are the spec's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

import callflow
import callflow.testing
from callflow import DeliveryOutcome, InviteState, NotificationKind
from callflow.testing import (
    FOLLOW_UP,
    SCENARIOS,
    SPEC_REQUESTS,
    Accepts,
    Declines,
    FakeGraph,
    NeverAnswers,
    Outgoing,
    Scenario,
    VirtualClock,
)
from spec_examples import Example, examples

pytestmark = pytest.mark.anyio

SPEC: dict[int, Example] = examples()
NUMBERS = sorted(SPEC)
GRAPH = "https://graph.microsoft.com/v1.0"
#: Identity properties the service fills in from its directory, which a fake does not have.
DIRECTORY_FILLED = frozenset({"displayName", "tenantId"})
PSTN = {"identity": {"phone": {"id": "+12345678901"}}}


# -- comparing shapes ---------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _leaves(identity_set: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {v["id"]: v for v in identity_set.values() if isinstance(v, Mapping)}


def _assert_same_identities(spec: Mapping[str, Any], fake: Any, path: str) -> None:
    # Identities are matched by id, not by kind: the rosters of examples 1 and 2 show the
    # invited user as an `application`.
    assert isinstance(fake, Mapping), f"{path}: not an object"
    spec_leaves, fake_leaves = _leaves(spec), _leaves(fake)
    assert spec_leaves.keys() == fake_leaves.keys(), f"{path}: other identities"
    for identity_id, leaf in spec_leaves.items():
        missing = sorted(leaf.keys() - fake_leaves[identity_id].keys() - DIRECTORY_FILLED)
        assert [] == missing, f"{path}: identity {identity_id} lacks {missing}"
    for key, value in spec.items():
        if not isinstance(value, Mapping):
            assert key in fake, f"{path}: lacks {key}"
            assert_shaped_like(value, fake[key], f"{path}.{key}")


def assert_shaped_like(spec: Any, fake: Any, path: str = "$") -> None:
    """Every property the spec shows is in ``fake``, with a value of the same JSON type."""
    if isinstance(spec, Mapping):
        if path.endswith(".identity"):
            _assert_same_identities(spec, fake, path)
            return
        assert isinstance(fake, Mapping), f"{path}: {fake!r} is not an object"
        missing = sorted(spec.keys() - fake.keys())
        assert [] == missing, f"{path}: the fake lacks {missing}"
        for key, value in spec.items():
            assert_shaped_like(value, fake[key], f"{path}.{key}")
    elif isinstance(spec, list):
        assert isinstance(fake, list), f"{path}: {fake!r} is not an array"
        assert len(spec) == len(fake), f"{path}: {len(fake)} items, the spec has {len(spec)}"
        for i, (s, f) in enumerate(zip(spec, fake, strict=True)):
            assert_shaped_like(s, f, f"{path}[{i}]")
    else:
        assert _json_type(spec) == _json_type(fake), f"{path}: spec {spec!r}, fake {fake!r}"


def test_the_shape_comparison_notices_a_missing_property() -> None:
    spec = SPEC[4].response
    fake = {
        **spec,
        "participants": [{k: v for k, v in spec["participants"][0].items() if k != "id"}],
    }

    with pytest.raises(AssertionError, match=r"\$\.participants\[0\]: the fake lacks \['id'\]"):
        assert_shaped_like(spec, fake)


# -- what the fake says for each example -------------------------------------------------------


def _scenario(number: int) -> Scenario:
    return next(s for s in SCENARIOS if s.example == number)


async def _play(number: int) -> tuple[httpx.Response, dict[str, Outgoing]]:
    """Send example ``number``'s request to a manual fake; its answer and planned notifications."""
    scenario = _scenario(number)
    ids = [scenario.operation_id] if scenario.operation_id else []
    fake = FakeGraph(clock=VirtualClock(), manual=True, quirks=scenario.quirks, operation_ids=ids)
    async with fake.http_client() as http:
        response = await http.post(
            f"/communications/calls/{scenario.call_id}/participants/invite", json=scenario.request
        )
    return response, {item.label: item for item in fake.pending}


def _only(body: Mapping[str, Any]) -> dict[str, Any]:
    (notification,) = body["value"]
    assert isinstance(notification, dict)
    return notification


@pytest.mark.parametrize("number", NUMBERS)
async def test_the_answer_is_shaped_like_the_spec(number: int) -> None:
    response, _ = await _play(number)

    assert 200 == response.status_code
    assert_shaped_like(SPEC[number].response, response.json())


@pytest.mark.parametrize("number", NUMBERS)
async def test_the_answer_says_what_the_spec_says(number: int) -> None:
    spec = SPEC[number].response

    response, _ = await _play(number)

    body = response.json()
    keys = ("@odata.type", "id", "status", "clientContext", "resultInfo")
    assert {k: spec[k] for k in keys} == {k: body[k] for k in keys}
    location = f"{GRAPH}/communications/calls/{SPEC[number].call_id}/operations/{spec['id']}"
    assert location == response.headers["Location"]


@pytest.mark.parametrize("number", NUMBERS)
async def test_the_operation_notification_is_shaped_like_the_spec(number: int) -> None:
    _, sent = await _play(number)

    assert_shaped_like(SPEC[number].completed, sent["operation"].body)
    spec_data = _only(SPEC[number].completed)["resourceData"]
    assert spec_data.keys() == _only(sent["operation"].body)["resourceData"].keys()


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("label", ["operation", "roster"])
async def test_each_notification_names_what_the_spec_names(number: int, label: str) -> None:
    spec = {"operation": SPEC[number].completed, "roster": SPEC[number].roster}[label]

    _, sent = await _play(number)

    keys = ("@odata.type", "changeType", "resource", "resourceUrl")
    assert {k: _only(spec)[k] for k in keys} == {k: _only(sent[label].body)[k] for k in keys}


@pytest.mark.parametrize("number", NUMBERS)
async def test_the_roster_notification_is_shaped_like_the_spec(number: int) -> None:
    _, sent = await _play(number)

    assert_shaped_like(SPEC[number].roster, sent["roster"].body)


def _routing(body: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (n.kind, n.call_id, n.operation_id, n.client_context, n.status)
        for n in callflow.parse_notifications(body)
    ]


@pytest.mark.parametrize("number", NUMBERS)
async def test_callflow_reads_the_fakes_notifications_as_it_reads_the_spec(number: int) -> None:
    _, sent = await _play(number)

    assert _routing(SPEC[number].completed) == _routing(sent["operation"].body)
    assert _routing(SPEC[number].roster) == _routing(sent["roster"].body)


def test_the_embedded_requests_are_the_spec_requests() -> None:
    assert {n: e.request for n, e in SPEC.items()} == dict(SPEC_REQUESTS)


@pytest.mark.parametrize("number", NUMBERS)
def test_each_example_scenario_is_the_spec_example(number: int) -> None:
    scenario, example = _scenario(number), SPEC[number]

    assert (example.call_id, example.response["id"]) == (scenario.call_id, scenario.operation_id)
    if number == 2:  # callflow refuses it as printed; sent as the answer echoes it
        assert example.response["participants"] == scenario.request["participants"]
        assert example.request["clientContext"] == scenario.request["clientContext"]
    else:
        assert example.request == scenario.request


# -- what the spec does not print -----------------------------------------------------------------


async def test_a_replacing_invite_is_followed_by_the_original_calls_end() -> None:
    _, sent = await _play(3)
    original = SPEC[3].request["participants"][0]["replacesCallId"]

    ended = [
        (n.kind, n.call_id, n.change_type)
        for label in ("original_terminated", "original_deleted")
        for n in callflow.parse_notifications(sent[label].body)
    ]

    kind = NotificationKind.call_ended
    assert [(kind, original, "updated"), (kind, original, "deleted")] == ended
    assert _only(SPEC[3].completed).keys() == _only(sent["original_deleted"].body).keys()


async def test_a_move_is_followed_by_the_participants_removal_from_the_source_meeting() -> None:
    _, sent = await _play(5)
    moved = SPEC[5].request["participants"][0]

    (removed,) = callflow.parse_notifications(sent["participant_removed"].body)
    (roster,) = callflow.parse_notifications(sent["source_roster"].body)

    assert (
        NotificationKind.participant_deleted,
        moved["replacesCallId"],
        moved["participantId"],
    ) == (
        removed.kind,
        removed.call_id,
        removed.participant_id,
    )
    assert [(moved["participantId"], True)] == [(p.id, p.is_removed) for p in roster.participants]


@pytest.mark.parametrize(
    ("number", "labels"),
    [
        (1, ["operation", "roster", "original_terminated", "original_deleted"]),
        (2, ["operation", "roster"]),
        (5, ["operation", "roster", "participant_removed", "source_roster"]),
    ],
)
async def test_each_kind_of_invite_plans_its_notifications_in_order(
    number: int, labels: list[str]
) -> None:
    _, sent = await _play(number)

    dues = [2.0 + i * FOLLOW_UP for i in range(len(labels))]
    assert list(zip(labels, dues, strict=True)) == [(o.label, o.due) for o in sent.values()]


# -- scripted answers ----------------------------------------------------------------------------


async def _planned(fake: FakeGraph, participants: list[dict[str, Any]]) -> list[Outgoing]:
    async with fake.http_client() as http:
        response = await http.post(
            "/communications/calls/call-1/participants/invite",
            json={"participants": participants, "clientContext": "cc-1"},
        )
    assert 200 == response.status_code
    return list(fake.pending)


async def test_a_declining_participant_fails_the_operation_with_its_result_info() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    fake.script("+12345678901", Declines(code=486, subcode=5, message="Busy here", after=3.0))

    (failed,) = await _planned(fake, [PSTN])

    (n,) = callflow.parse_notifications(failed.body)
    assert ("operation", 3.0, callflow.OperationStatus.failed) == (
        failed.label,
        failed.due,
        n.status,
    )
    assert n.result_info is not None
    assert (486, 5, "Busy here") == (
        n.result_info.code,
        n.result_info.subcode,
        n.result_info.message,
    )


async def test_a_participant_who_never_answers_fails_after_the_ring_timeout_with_408() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True, ring_timeout=45.0)
    fake.script("+12345678901", NeverAnswers())

    (failed,) = await _planned(fake, [PSTN])

    (n,) = callflow.parse_notifications(failed.body)
    assert n.result_info is not None
    assert (45.0, 408) == (failed.due, n.result_info.code)


async def test_scripts_match_any_identity_id_and_the_first_refusal_decides() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    fake.script("user-b", Declines(code=603))
    fake.script("user-c", NeverAnswers())
    users = [{"identity": {"user": {"id": f"user-{x}"}}} for x in "abc"]

    (failed,) = await _planned(fake, users)

    (n,) = callflow.parse_notifications(failed.body)
    assert n.result_info is not None
    assert (2.0, 603) == (failed.due, n.result_info.code)


async def test_a_group_invite_completes_when_the_slowest_participant_answers() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True, default_answer=Accepts(after=1.0))
    fake.script("user-b", Accepts(after=4.0))
    users = [{"identity": {"user": {"id": f"user-{x}"}}} for x in "ab"]

    planned = await _planned(fake, users)

    assert [("operation", 4.0), ("roster", 4.0 + FOLLOW_UP)] == [(o.label, o.due) for o in planned]


# -- the HTTP side ---------------------------------------------------------------------------------


async def test_only_the_invite_endpoint_exists() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    async with fake.http_client() as http:
        wrong_path = await http.post("/communications/calls/call-1/participants", json={})
        wrong_method = await http.get("/communications/calls/call-1/participants/invite")

    assert (404, 404) == (wrong_path.status_code, wrong_method.status_code)
    assert "NotFound" == wrong_path.json()["error"]["code"]
    assert [] == list(fake.operations)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"participants": []}, id="no participants"),
        pytest.param({"participants": [PSTN] * 6}, id="six participants"),
        pytest.param({"participants": [{"identity": None}]}, id="no identity"),
        pytest.param({"participants": [PSTN], "clientContext": 7}, id="clientContext"),
        pytest.param([], id="not an object"),
    ],
)
async def test_a_body_the_service_would_refuse_is_answered_400_and_not_taken(body: Any) -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    async with fake.http_client() as http:
        response = await http.post("/communications/calls/call-1/participants/invite", json=body)

    assert 400 == response.status_code
    assert "BadRequest" == response.json()["error"]["code"]
    assert (["400"], False, ()) == (
        [r.answer for r in fake.requests],
        fake.requests[0].taken,
        fake.pending,
    )


async def test_the_request_log_keeps_the_body_and_whether_a_token_came_but_not_the_token() -> None:
    fake = FakeGraph(clock=VirtualClock(5.0), manual=True, operation_ids=["op-1"])
    body = {"participants": [PSTN], "clientContext": "cc-1"}
    async with fake.http_client(headers={"Authorization": "Bearer secret"}) as http:
        await http.post("/communications/calls/call-1/participants/invite", json=body)

    (received,) = fake.requests
    assert ("POST", "call-1", body, True, 5.0, "200", "op-1", True) == (
        received.method,
        received.call_id,
        received.body,
        received.authorized,
        received.at,
        received.answer,
        received.operation_id,
        received.taken,
    )
    assert "secret" not in repr(received)


async def test_operation_ids_are_the_given_ones_then_repeatable_random_ones() -> None:
    async def ids(fake: FakeGraph) -> list[str]:
        for _ in range(3):
            await _planned(fake, [PSTN])
        return list(fake.operations)

    first = await ids(FakeGraph(clock=VirtualClock(), manual=True, operation_ids=["op-1"], seed=3))
    again = await ids(FakeGraph(clock=VirtualClock(), manual=True, operation_ids=["op-1"], seed=3))

    assert "op-1" == first[0]
    assert first == again
    assert 3 == len(set(first))


async def test_an_automatic_fake_must_be_running_to_take_an_invite() -> None:
    fake = FakeGraph(clock=VirtualClock())
    async with fake.http_client() as http:
        with pytest.raises(callflow.CallflowError, match="not running"):
            await http.post(
                "/communications/calls/call-1/participants/invite", json={"participants": [PSTN]}
            )


async def test_a_fake_runs_once_at_a_time() -> None:
    async with FakeGraph(clock=VirtualClock()) as fake:
        with pytest.raises(callflow.CallflowError, match="already running"):
            await fake.__aenter__()


# -- delivery ------------------------------------------------------------------------------------


async def test_notifications_go_to_the_client_and_their_receipts_are_kept(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    handle = await callflow_client.invite("call-1", [PSTN])
    await handle.wait()
    await fake_graph.drain()

    assert [
        ("operation", "client", DeliveryOutcome.applied),
        ("roster", "client", DeliveryOutcome.applied),
    ] == [
        (s.label, s.to, s.receipt.deliveries[0].outcome if s.receipt else None)
        for s in fake_graph.sent
    ]
    assert [2.0, 2.0 + FOLLOW_UP] == [s.at for s in fake_graph.sent]


async def test_notifications_go_over_http_to_the_bots_webhook(virtual_clock: VirtualClock) -> None:
    url = "https://bot.example/api/calls"
    async with callflow.Client(clock=virtual_clock) as client:
        app = callflow.webhook_app(client, app_id="bot-app-id", verify=False)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as webhook,
            FakeGraph(clock=virtual_clock, deliver_to=url, webhook_client=webhook) as fake,
            fake.http_client() as http,
        ):
            client._http = http  # the Client sends its POSTs to the fake as well
            handle = await client.invite("call-1", [PSTN])

            assert InviteState.completed == await handle.wait()
            await fake.drain()

    assert [("operation", url, 202), ("roster", url, 202)] == [
        (s.label, s.to, s.status_code) for s in fake.sent
    ]


async def test_webhook_posts_are_json_with_the_headers_given(virtual_clock: VirtualClock) -> None:
    seen: list[httpx.Request] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(webhook)) as hooks,
        FakeGraph(
            clock=virtual_clock,
            manual=True,
            deliver_to="https://bot.example/api/calls",
            webhook_client=hooks,
            webhook_headers={"Authorization": "Bearer from-graph"},
        ) as fake,
    ):
        await _planned(fake, [PSTN])
        sent = await fake.deliver_next()

    (request,) = seen
    assert ("POST", "application/json", "Bearer from-graph") == (
        request.method,
        request.headers["content-type"],
        request.headers["authorization"],
    )
    assert sent.body == httpx.Response(200, content=request.content).json()


async def test_a_webhook_that_cannot_be_reached_is_logged_and_delivery_goes_on(
    virtual_clock: VirtualClock,
) -> None:
    def webhook(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(webhook)) as hooks,
        FakeGraph(
            clock=virtual_clock, deliver_to="https://bot.example/", webhook_client=hooks
        ) as fake,
    ):
        await _planned(fake, [PSTN])
        await fake.drain()

    assert [("operation", "ConnectError: refused"), ("roster", "ConnectError: refused")] == [
        (s.label, s.error) for s in fake.sent
    ]


async def test_notifications_go_to_an_async_callable(virtual_clock: VirtualClock) -> None:
    bodies: list[dict[str, Any]] = []

    async def collect(body: dict[str, Any]) -> None:
        bodies.append(body)

    async with FakeGraph(clock=virtual_clock, deliver_to=collect) as fake:
        await _planned(fake, [PSTN])
        await fake.drain()

    assert [s.body for s in fake.sent] == bodies
    assert ["callable", "callable"] == [s.to for s in fake.sent]


async def test_changing_the_target_between_notifications_sends_each_to_the_target_then_set(
    virtual_clock: VirtualClock,
) -> None:
    bodies: list[dict[str, Any]] = []

    async def collect(body: dict[str, Any]) -> None:
        bodies.append(body)

    fake = FakeGraph(clock=virtual_clock, manual=True)
    async with (
        fake,
        fake.http_client() as http,
        callflow.Client(http, clock=virtual_clock) as client,
    ):
        await client.invite("call-1", [PSTN])
        await client.invite("call-2", [PSTN])
        for target in (collect, client, None, client):
            fake.deliver_to(target)
            await fake.deliver_next()

    assert ["callable", "client", "nowhere", "client"] == [s.to for s in fake.sent]
    assert [fake.sent[0].body] == bodies
    assert [None, None] == [fake.sent[0].receipt, fake.sent[2].receipt]
    assert all(s.receipt is not None for s in (fake.sent[1], fake.sent[3]))


async def test_without_a_target_notifications_are_only_logged(virtual_clock: VirtualClock) -> None:
    async with FakeGraph(clock=virtual_clock) as fake:
        await _planned(fake, [PSTN])
        await fake.drain()

    assert [("operation", "nowhere"), ("roster", "nowhere")] == [(s.label, s.to) for s in fake.sent]


# -- stepping through --------------------------------------------------------------------------


async def test_stepping_through_a_replacing_invite_one_notification_at_a_time(
    callflow_client: callflow.Client, fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> None:
    fake_graph.manual = True
    scenario = _scenario(3)
    fake_graph.quirks = scenario.quirks

    handle = await callflow_client.invite(
        scenario.call_id,
        scenario.request["participants"],
        client_context=scenario.request["clientContext"],
    )
    states = [handle.state]
    times = [virtual_clock.now()]
    labels = [o.label for o in fake_graph.pending]
    outcomes = []
    while fake_graph.pending:
        sent = await fake_graph.deliver_next()
        assert sent.receipt is not None
        outcomes.append(sent.receipt.deliveries[0].outcome)
        states.append(handle.state)
        times.append(virtual_clock.now())

    assert ["operation", "roster", "original_terminated", "original_deleted"] == labels
    assert [
        InviteState.running,
        InviteState.tearing_down_original,
        InviteState.tearing_down_original,
        InviteState.completed,
        InviteState.completed,
    ] == states
    applied, late = DeliveryOutcome.applied, DeliveryOutcome.late
    assert [applied, applied, applied, late] == outcomes
    assert [0.0, 2.0, 2.05, 2.1, 2.15] == pytest.approx(times)


async def test_delivering_with_nothing_pending_is_an_error() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)

    with pytest.raises(callflow.CallflowError, match="no notification is pending"):
        await fake.deliver_next()


async def test_leaving_manual_mode_delivers_what_is_pending(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    fake_graph.manual = True
    handle = await callflow_client.invite("call-1", [PSTN])
    assert 2 == len(fake_graph.pending)

    fake_graph.manual = False

    assert InviteState.completed == await handle.wait()
    await fake_graph.drain()
    assert [] == list(fake_graph.pending)


def test_callflow_testing_all_names_everything_it_offers() -> None:
    offered = {
        name
        for name, value in vars(callflow.testing).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }

    assert offered == set(callflow.testing.__all__)


async def test_an_exception_inside_the_fake_graph_block_comes_out_unchanged() -> None:
    with pytest.raises(callflow.InviteError):
        async with FakeGraph():
            raise callflow.InviteError("raised in the block")


async def test_a_hidden_participant_never_appears_in_the_roster() -> None:
    fake = FakeGraph(clock=VirtualClock(), manual=True)
    hidden = {**PSTN, "hidden": True}
    shown = {"identity": {"phone": {"id": "+12345678902"}}}
    async with fake.http_client() as http:
        await http.post(
            "/communications/calls/c1/participants/invite",
            json={"participants": [hidden, shown], "clientContext": "ctx"},
        )
    roster = {item.label: item for item in fake.pending}["roster"]

    (notification,) = callflow.parse_notifications(roster.body)
    listed = {p.info.identity.phone.id for p in notification.participants}  # type: ignore[union-attr]
    assert {"+12345678902"} == listed
