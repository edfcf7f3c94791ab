"""Fixtures shared by callflow's tests.

The spec's own JSON comes from :mod:`spec_examples`; what the spec does not print (the
teardown of the original call, a declined invite) is built here, once, from it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redis_support import redis_server_url
from spec_examples import Example, examples

Body = dict[str, Any]


def _body(notification: Body) -> Body:
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": [notification]}


@pytest.fixture(scope="session")
def spec() -> dict[int, Example]:
    """The spec's five examples, by number."""
    return examples()


@pytest.fixture(scope="session")
def call_gone() -> Callable[[str, str], Body]:
    """``(call_id, how)``: a body saying the call ended; how is deleted or terminated."""

    def build(call_id: str, how: str) -> Body:
        resource = f"/communications/calls/{call_id}"
        if how == "deleted":
            data: Any = None
            change = "deleted"
        else:
            data = {"@odata.type": "#microsoft.graph.call", "id": call_id, "state": how}
            change = "updated"
        return _body({"changeType": change, "resource": resource, "resourceData": data})

    return build


@pytest.fixture(scope="session")
def participant_deleted() -> Callable[[str, str], Body]:
    """``(call_id, participant_id)``: a body saying the participant left that call."""

    def build(call_id: str, participant_id: str) -> Body:
        resource = f"/communications/calls/{call_id}/participants/{participant_id}"
        return _body({"changeType": "deleted", "resource": resource, "resourceData": None})

    return build


@pytest.fixture(scope="session")
def roster_removed() -> Callable[[str, str], Body]:
    """``(call_id, participant_id)``: a roster of the call showing the participant removed."""

    def build(call_id: str, participant_id: str) -> Body:
        entry = {
            "@odata.type": "#microsoft.graph.participant",
            "id": participant_id,
            "removedState": {"reason": "moved"},
        }
        resource = f"/communications/calls/{call_id}/participants"
        return _body({"changeType": "updated", "resource": resource, "resourceData": [entry]})

    return build


@pytest.fixture(scope="session")
def teardown(
    call_gone: Callable[[str, str], Body], participant_deleted: Callable[[str, str], Body]
) -> Callable[[Example], Body]:
    """The notification that finishes a replacing example (1, 3 or 5) after its own."""

    def build(example: Example) -> Body:
        first = example.request["participants"][0]
        if "participantId" in first:
            return participant_deleted(first["replacesCallId"], first["participantId"])
        return call_gone(first["replacesCallId"], "deleted")

    return build


@pytest.fixture(scope="session")
def declined() -> Callable[[Example], Body]:
    """The example's operation-completed notification, turned into a declined invite."""

    def build(example: Example) -> Body:
        body = copy.deepcopy(example.completed)
        data = body["value"][0]["resourceData"]
        data["status"] = "failed"
        data["resultInfo"] = {"code": 403, "subcode": 10004, "message": "declined"}
        return body

    return build


@pytest.fixture(scope="session")
def trackable_request() -> Callable[[Example], Body]:
    """The example's request; example 2's with its participants as the response echoes them.

    Example 2 as printed sets replacesCallId on two participants, which callflow refuses.
    """

    def build(example: Example) -> Body:
        if example.number != 2:
            return example.request
        return {**example.request, "participants": example.response["participants"]}

    return build


@pytest.fixture(params=["asyncio", "trio"], scope="module")
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio (a module may narrow it)."""
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server's URL (see :mod:`redis_support`); tests isolate by key prefix."""
    with redis_server_url() as url:
        yield url
