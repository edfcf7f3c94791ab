"""The core does no I/O: importing and using it loads neither anyio nor httpx."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import callflow._core
import spec_examples

ENGINE = ("anyio", "httpx", "trio", "sniffio")

#: Run in a fresh interpreter: feed one spec example through the sans-I/O core, then say
#: which engine libraries got loaded.
PLAY = textwrap.dedent(
    """
    import json, sys
    example = json.loads(sys.argv[1])
    {imports}
    invite = Invite.from_request(example["call_id"], example["request"], invite_id="i-1")
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


CORE = Path(callflow._core.__file__).parent
HIDDEN_INPUTS = {"time", "uuid", "datetime", "random", "secrets", "os"}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = list(ast.walk(tree))
    names = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
    names |= {
        n.module.split(".")[0]
        for n in nodes
        if isinstance(n, ast.ImportFrom) and n.module and not n.level
    }
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_no_core_module_imports_a_clock_an_id_maker_or_randomness(path: Path) -> None:
    assert set() == _imported(path) & HIDDEN_INPUTS
