"""Decoding webhook bodies: orjson when it is installed (``callflow[speed]``), else json.

Theory of operation
-------------------
A webhook body is decoded by the standard library's :func:`json.loads` unless orjson is
importable, in which case :func:`fast_loads` tries it first. The result is the same
either way, by construction: orjson is only trusted where its answer is the standard
library's, and everything else is :data:`DECLINED` and goes to :func:`json.loads`, which
then accepts it or says what is wrong in its own words (so errors read the same too).

Where the two differ, orjson refuses and json accepts (NaN and Infinity, numbers beyond
a double, nesting deeper than 1024, lone surrogates), or orjson refuses first (invalid
UTF-8, a byte order mark, bad JSON: json refuses them as well); the one case where
orjson *accepts* differently is an integer too large for 64 bits, which it reads as a
float. Such a literal has at least 20 digits in a row, so a body with a run of 20
digits is declined (a run inside a string is declined too: the answer is the same,
only slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["DECLINED", "SPEED", "fast_loads"]

try:
    import orjson
except ImportError:  # the [speed] extra is not installed
    _orjson_loads: Callable[[Any], Any] | None = None
    _OrjsonError: type[Exception] = ValueError
else:
    _orjson_loads = orjson.loads
    _OrjsonError = orjson.JSONDecodeError

#: True when orjson is importable and used.
SPEED: Final = _orjson_loads is not None

#: What :func:`fast_loads` returns when the body must go to :func:`json.loads`.
DECLINED: Final = object()

# Digits to "0", everything else to " ": a run of 20 digits becomes b"0" * 20.
_DIGITS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_RUN: Final = b"0" * 20


def fast_loads(body: bytes | bytearray | memoryview) -> Any:
    """The decoded body, when orjson decodes it exactly as :func:`json.loads` would.

    Args:
        body: a UTF-8 JSON document.

    Returns:
        The decoded document, or :data:`DECLINED` (orjson is not installed, refused the
        body, or might read one of its numbers differently).

    """
    loads = _orjson_loads
    if loads is None:
        return DECLINED
    if _RUN in (body if type(body) is bytes else bytes(body)).translate(_DIGITS):
        return DECLINED
    try:
        return loads(body)
    except _OrjsonError:
        return DECLINED
