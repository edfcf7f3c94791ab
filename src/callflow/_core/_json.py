"""Decoding webhook bodies: msgspec when it is installed (``callflow[speed]``), else json.

Theory of operation
-------------------
A webhook body is decoded by the standard library's json unless msgspec is importable,
in which case :func:`fast_loads` tries it first. The result is the same either way, by
construction: msgspec is only trusted where its answer is the standard library's, and
everything else is :data:`DECLINED` and goes to json, which then accepts it or says what
is wrong in its own words (so errors read the same too).

Where the two differ, msgspec refuses and json accepts: NaN and Infinity, numbers beyond
a double, integers beyond Python's digit limit, lone surrogates, a byte order mark,
nesting past the recursion limit; or msgspec refuses first (invalid UTF-8, bad JSON:
json refuses them as well). Where msgspec accepts, it reads what json reads, integers of
any size included (exactly, never as floats): ``tests/test_json_speed.py`` checks it,
property-based.

Without the extra, :func:`json_loads` is :func:`json.loads` without its layers: it calls
the C scanner that :func:`json.loads` itself ends in, and hands anything unusual
(leading or trailing whitespace, an error) to :func:`json.loads`, so that values and
errors are json's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DECLINED", "SPEED", "fast_loads", "json_loads"]

try:
    import msgspec
except ImportError:  # the [speed] extra is not installed
    _fast_decode: Callable[[Any], Any] | None = None
    _FastError: tuple[type[BaseException], ...] = (ValueError,)
else:
    _fast_decode = msgspec.json.Decoder().decode
    # RecursionError: msgspec's own depth limit is the interpreter's.
    _FastError = (msgspec.MsgspecError, RecursionError)

#: True when msgspec is importable and used.
SPEED: Final = _fast_decode is not None

#: What :func:`fast_loads` returns when the body must go to json.
DECLINED: Final = object()


def fast_loads(body: bytes | bytearray | memoryview) -> Any:
    """The decoded body, when msgspec decodes it, which is exactly as json would.

    Args:
        body: a UTF-8 JSON document.

    Returns:
        The decoded document, or :data:`DECLINED` (msgspec is not installed or refused
        the body).

    """
    decode = _fast_decode
    if decode is None:
        return DECLINED
    try:
        return decode(body)
    except _FastError:
        return DECLINED


# The scanner json.loads ends in (the C one where the interpreter has it): a JSONDecoder
# with the default options binds it as ``scan_once``, a callable of (text, index).
_scan: Final[Callable[[str, int], tuple[Any, int]]] = vars(json.JSONDecoder())["scan_once"]
_WHITESPACE: Final = frozenset(" \t\n\r")


def json_loads(text: str) -> Any:
    """:func:`json.loads` of ``text``: the same value, or the same exception.

    A document that starts with a value and ends with it is read by the scanner directly;
    any other goes to :func:`json.loads`, errors included.
    """
    if text and text[0] not in _WHITESPACE:
        try:
            value, end = _scan(text, 0)
        except (StopIteration, ValueError):
            pass  # json.loads says what is wrong, in its words
        else:
            if end == len(text):
                return value
    return json.loads(text)
