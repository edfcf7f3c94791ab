"""The spec's examples, read from ``tests/data/spec/participant-invite.txt`` itself.

The spec files are vendored into the repository (copied unchanged from the project's shared
spec), so the suite needs nothing beside the checkout. ``CALLFLOW_SPEC_DIR`` points it at
another copy.

Nothing here is retyped: every JSON object comes out of the spec file. Each example has
four blocks in order: the request, the response, the operation-completed notification
and the roster notification.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(os.environ.get("CALLFLOW_SPEC_DIR", Path(__file__).parent / "data" / "spec"))
SPEC_TXT = SPEC_DIR / "participant-invite.txt"
SPEC_MD = SPEC_DIR / "participant-invite.md"

_EXAMPLE = re.compile(r"^Example (\d): (.+)$", re.MULTILINE)
_POST = re.compile(
    r"^POST (?:https://graph\.microsoft\.com/v1\.0)?(/communications/calls/[^ ]+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Example:
    number: int
    title: str
    request_path: str
    call_id: str
    request: dict[str, Any]
    response: dict[str, Any]
    completed: dict[str, Any]
    roster: dict[str, Any]

    @property
    def notifications(self) -> tuple[dict[str, Any], ...]:
        return (self.completed, self.roster)


def json_blocks(text: str) -> list[Any]:
    """Every top-level JSON object in ``text``, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while (start := text.find("{", index)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        found.append(obj)
        index = end
    return found


@cache
def examples() -> dict[int, Example]:
    text = SPEC_TXT.read_text(encoding="utf-8")
    heads = list(_EXAMPLE.finditer(text))
    result: dict[int, Example] = {}
    for i, head in enumerate(heads):
        section = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        request, response, completed, roster = json_blocks(section)
        path_match = _POST.search(section)
        assert path_match is not None, f"example {head.group(1)} has no POST line"
        path = path_match.group(1)
        call_id = path.split("/")[3]
        if call_id == "{id}":
            # The spec leaves the call id as a placeholder; its notifications name the call.
            call_id = completed["value"][0]["resourceUrl"].split("/")[3]
        result[int(head.group(1))] = Example(
            number=int(head.group(1)),
            title=head.group(2).strip(),
            request_path=path,
            call_id=call_id,
            request=request,
            response=response,
            completed=completed,
            roster=roster,
        )
    return result


def all_json_objects() -> list[Any]:
    """Every JSON object printed in either revision of the spec (for round trips)."""
    objects = json_blocks(SPEC_TXT.read_text(encoding="utf-8"))
    objects += [o for o in json_blocks(SPEC_MD.read_text(encoding="utf-8")) if "blockType" not in o]
    return objects
