"""The speed extra (msgspec) decodes webhook bodies exactly as the standard library does.

Every body is parsed twice, with msgspec in use and with it switched off, and the two must
agree: the same notifications, or the same NotificationError in the same words.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


#: Bodies where msgspec and json disagree, or where json alone accepts.
EDGE_BODIES = [
    pytest.param(_with_value("123456789012345678901234567890"), id="int beyond 64 bits"),
    pytest.param(_with_value("-18446744073709551616"), id="negative int beyond 64 bits"),
    pytest.param(_with_value("18446744073709551615"), id="largest unsigned 64-bit int"),
    pytest.param(_with_value('"12345678901234567890123"'), id="20 digits inside a string"),
    pytest.param(_with_value("NaN"), id="NaN"),
    pytest.param(_with_value("-Infinity"), id="minus Infinity"),
    pytest.param(_with_value("1e400"), id="beyond a double"),
    pytest.param(_with_value("1" * 5000), id="beyond the int digit limit"),
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
def without_msgspec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard library's path, as if the extra were not installed."""
    monkeypatch.setattr(speed_json, "_fast_decode", None)


def outcome(parse: Callable[[], Any]) -> Any:
    """What parsing gives: each notification's JSON and kind, or the error's words."""
    try:
        return [(n.kind, n.to_json(), n.call_id) for n in parse()]
    except NotificationError as exc:
        return ("error", str(exc))


def test_the_extra_is_installed_for_the_tests() -> None:
    assert speed_json.SPEED


@pytest.mark.parametrize("body", [*SPEC_BODIES, *EDGE_BODIES])
def test_msgspec_and_json_give_the_same_notifications_or_the_same_error(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = outcome(lambda: parse_notifications(body))
    monkeypatch.setattr(speed_json, "_fast_decode", None)
    slow = outcome(lambda: parse_notifications(body))

    assert slow == fast
    # NaN != NaN: compare the JSON text as well, so a float NaN on both sides still counts
    assert repr(slow) == repr(fast)


@pytest.mark.parametrize("body", SPEC_BODIES)
def test_the_spec_bodies_are_decoded_by_msgspec(body: bytes) -> None:
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


def test_without_msgspec_bodies_go_to_json(without_msgspec: None) -> None:
    assert speed_json.DECLINED is speed_json.fast_loads(FIRST)
    assert 1 == len(parse_notifications(FIRST))


def test_callflow_works_when_msgspec_cannot_be_imported() -> None:
    code = (
        "import sys; sys.modules['msgspec'] = None\n"
        "import callflow._core._json as j\n"
        "from callflow import parse_notifications\n"
        f"n, = parse_notifications({FIRST!r})\n"
        "print(j.SPEED, n.kind, 'msgspec' in sys.modules and sys.modules['msgspec'] is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert ["False", "operation", "False"] == out


# Any JSON document: what the service could send, and more.
_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(_documents)
@settings(max_examples=300)
def test_msgspec_reads_any_document_as_json_does(document: Any) -> None:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")

    fast = speed_json.fast_loads(body)

    if fast is not speed_json.DECLINED:
        assert repr(json.loads(body)) == repr(fast)


_NUMBER_TEXTS = st.from_regex(r"\A-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?\Z")


@given(_NUMBER_TEXTS)
@settings(max_examples=500)
def test_msgspec_reads_any_number_text_as_json_does(text: str) -> None:
    body = f'{{"x":{text}}}'.encode()

    fast = speed_json.fast_loads(body)
    slow = json.loads(body)

    if fast is speed_json.DECLINED:
        # declined only where the number is beyond a double (json reads it as infinity)
        assert math.isinf(slow["x"])
    else:
        assert repr(slow) == repr(fast)
        assert type(slow["x"]) is type(fast["x"])


def _json_outcome(loads: Callable[[str], Any], text: str) -> Any:
    try:
        return ("value", repr(loads(text)))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc), str(exc))


@given(_documents, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\r\n"]))
@settings(max_examples=300)
def test_json_loads_is_json_loads_for_documents(document: Any, before: str, after: str) -> None:
    text = before + json.dumps(document) + after

    assert _json_outcome(json.loads, text) == _json_outcome(speed_json.json_loads, text)


@given(st.text(alphabet='{}[]",:0123456789.eE-+ truefalsn\\u\n', max_size=30))
@settings(max_examples=500)
def test_json_loads_is_json_loads_for_any_text(text: str) -> None:
    assert _json_outcome(json.loads, text) == _json_outcome(speed_json.json_loads, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\ufeff{}",
        "{} x",
        "{}{}",
        "[1,]",
        '"\\ud800"',
        "NaN",
        "-Infinity",
        "1e400",
        "[" * 1100 + "]" * 1100,
        "1" * 5000,
        '{"a":1,"a":2}',
        '{"value": [}',
    ],
)
def test_json_loads_gives_json_loads_values_and_errors(text: str) -> None:
    assert _json_outcome(json.loads, text) == _json_outcome(speed_json.json_loads, text)
