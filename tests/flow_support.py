"""The participants the workflow tests ring: the spec's own, with their identity ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callflow.testing import SPEC_REQUESTS

CALL_ID = "7531d31f-d10d-44de-802f-c569dbca451c"
#: Example 2's participants (without its refused replacesCallId) and example 4's.
PARTICIPANTS: list[dict[str, Any]] = [
    *(
        {k: v for k, v in p.items() if k != "replacesCallId"}
        for p in SPEC_REQUESTS[2]["participants"]
    ),
    dict(SPEC_REQUESTS[4]["participants"][0]),
]


def _id_of(participant: Mapping[str, Any]) -> str:
    (leaf,) = (v for v in participant["identity"].values() if isinstance(v, Mapping))
    return str(leaf["id"])


#: Each participant's identity id, the key FakeGraph's scripts take.
IDS = [_id_of(p) for p in PARTICIPANTS]
