"""The core does no I/O: importing and using it loads neither anyio nor httpx."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import spec_examples

ENGINE = ("anyio", "httpx", "trio", "sniffio")

#: Run in a fresh interpreter: feed one spec example through the sans-I/O core, then say
#: which engine libraries got loaded.
PLAY = textwrap.dedent(
    """
    import json, sys
    example = json.loads(sys.argv[1])
    {imports}
    invite = Invite.from_request(example["call_id"], example["request"])
    board = Switchboard()
    board.add(invite, at=0.0)
    board.note_response(invite, at=1.0)
    invite.receive_response(200, {{}}, example["response"], at=1.0)
    receipt = board.receive(json.dumps(example["completed"]).encode(), at=2.0)
    board.expire(at=3.0)
    loaded = sorted(m for m in {engine} if m in sys.modules)
    print(json.dumps({{"state": str(invite.state), "applied": len(receipt.moved),
                       "loaded": loaded}}))
    """
)

IMPORTS = {
    "callflow._core": (
        "import callflow._core\n"
        "from callflow._core._invite import Invite\n"
        "from callflow._core._switchboard import Switchboard"
    ),
    "callflow": "import callflow\nInvite, Switchboard = callflow.Invite, callflow.Switchboard",
}


@pytest.mark.parametrize("entry", IMPORTS)
def test_the_core_runs_without_loading_anyio_or_httpx(entry: str) -> None:
    example = spec_examples.examples()[4]  # a plain invite: completes on its notification
    payload = {
        "call_id": example.call_id,
        "request": example.request,
        "response": example.response,
        "completed": example.completed,
    }
    script = PLAY.format(imports=IMPORTS[entry], engine=repr(ENGINE))

    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(payload)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert {"state": "completed", "applied": 1, "loaded": []} == json.loads(done.stdout)
