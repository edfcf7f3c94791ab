"""The speed extra (orjson) decodes webhook bodies exactly as the standard library does.

Every body is parsed twice, with orjson in use and with it switched off, and the two must
agree: the same notifications, or the same NotificationError in the same words.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import callflow._core._json as speed_json
from callflow import NotificationError, parse_notifications
from spec_examples import examples

SPEC = examples()

#: The spec's notifications as the service sends them (compact bytes), each example's two.
SPEC_BYTES = {
    f"example{n}-{which}": json.dumps(body, separators=(",", ":")).encode()
    for n, ex in sorted(SPEC.items())
    for which, body in (("completed", ex.completed), ("roster", ex.roster))
}
SPEC_BODIES = [pytest.param(body, id=name) for name, body in SPEC_BYTES.items()]
FIRST = SPEC_BYTES["example1-completed"]


def _with_value(text: str) -> bytes:
    """A body whose first notification's resourceData carries ``text`` as a property."""
    body = json.dumps(SPEC[4].completed, separators=(",", ":"))
    marker = '"resourceData":{'
    assert marker in body
    return body.replace(marker, marker + f'"x":{text},', 1).encode()


#: Bodies where orjson and json disagree, or where json alone accepts.
EDGE_BODIES = [
    pytest.param(_with_value("123456789012345678901234567890"), id="int beyond 64 bits"),
    pytest.param(_with_value("-18446744073709551616"), id="negative int beyond 64 bits"),
    pytest.param(_with_value("18446744073709551615"), id="largest unsigned 64-bit int"),
    pytest.param(_with_value('"12345678901234567890123"'), id="20 digits inside a string"),
    pytest.param(_with_value("NaN"), id="NaN"),
    pytest.param(_with_value("-Infinity"), id="minus Infinity"),
    pytest.param(_with_value("1e400"), id="beyond a double"),
    pytest.param(_with_value("0.1000000000000000055511151231257827"), id="long fraction"),
    pytest.param(_with_value('"\\ud800"'), id="lone surrogate"),
    pytest.param(_with_value("[" * 1100 + "]" * 1100), id="deeper than 1024"),
    pytest.param(_with_value('{"a":1,"a":2}'), id="duplicate keys"),
    pytest.param(b"\xef\xbb\xbf" + _with_value("1"), id="byte order mark"),
    pytest.param(_with_value('"caf\u00e9 \u00ff"'), id="escaped non-ASCII"),
    pytest.param(_with_value('"café ÿ"'), id="non-ASCII UTF-8"),
    pytest.param(b'{"value": [}', id="bad JSON"),
    pytest.param(b'{"value": []} x', id="trailing content"),
    pytest.param(b'{"value": ["\xff"]}', id="not UTF-8"),
    pytest.param(b"[]", id="an array"),
]


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard library's path, as if the extra were not installed."""
    monkeypatch.setattr(speed_json, "_orjson_loads", None)


def outcome(parse: Callable[[], Any]) -> Any:
    """What parsing gives: each notification's JSON and kind, or the error's words."""
    try:
        return [(n.kind, n.to_json(), n.call_id) for n in parse()]
    except NotificationError as exc:
        return ("error", str(exc))


def test_the_extra_is_installed_for_the_tests() -> None:
    assert speed_json.SPEED


@pytest.mark.parametrize("body", [*SPEC_BODIES, *EDGE_BODIES])
def test_orjson_and_json_give_the_same_notifications_or_the_same_error(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = outcome(lambda: parse_notifications(body))
    monkeypatch.setattr(speed_json, "_orjson_loads", None)
    slow = outcome(lambda: parse_notifications(body))

    assert slow == fast
    # NaN != NaN: compare the JSON text as well, so a float NaN on both sides still counts
    assert repr(slow) == repr(fast)


@pytest.mark.parametrize("body", SPEC_BODIES)
def test_the_spec_bodies_are_decoded_by_orjson(body: bytes) -> None:
    assert speed_json.DECLINED is not speed_json.fast_loads(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("18446744073709551615", 18446744073709551615),
    ],
)
def test_integers_beyond_a_double_stay_exact_integers(text: str, expected: int) -> None:
    (n,) = parse_notifications(_with_value(text))

    assert expected == n.resource_data["x"]
    assert isinstance(n.resource_data["x"], int)


def test_without_orjson_bodies_go_to_json(without_orjson: None) -> None:
    assert speed_json.DECLINED is speed_json.fast_loads(FIRST)
    assert 1 == len(parse_notifications(FIRST))


def test_callflow_works_when_orjson_cannot_be_imported() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "import callflow._core._json as j\n"
        "from callflow import parse_notifications\n"
        f"n, = parse_notifications({FIRST!r})\n"
        "print(j.SPEED, n.kind, 'orjson' in sys.modules and sys.modules['orjson'] is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert ["False", "operation", "False"] == out
