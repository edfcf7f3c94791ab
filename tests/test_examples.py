"""The examples run: each spec example's script against the embedded fake Graph service,
one of them as a real subprocess, and the webhook bot under uvicorn over real HTTP.

The scripts run on the real clock with participants that answer after 0.3 s, so each
takes about half a second. Every variable that would switch them to the real Graph is
unset first.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from callflow import InviteState
from callflow.testing import SPEC_REQUESTS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STATES = frozenset(state.value for state in InviteState)

REPLACING = ["requested", "running", "tearing_down_original", "completed"]
PLAIN = ["requested", "running", "completed"]


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def states_shown(output: str) -> list[str]:
    """The states in a script's timeline (``  +0.301s  completed  ...``), in order."""
    words = re.findall(r"^  \+\d+\.\d{3}s  (\S+)", output, flags=re.MULTILINE)
    return [word for word in words if word in STATES]


@pytest.fixture(autouse=True)
def fake_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/ importable (the scripts import _common), no CALLFLOW_* variable set."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in load("_common").VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- the spec's examples, one script each ---------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("invite_one", REPLACING),
        ("invite_several", PLAIN),
        ("replace_p2p", REPLACING),
        ("invite_pstn", PLAIN),
        ("move_meeting", REPLACING),
    ],
)
def test_example_script_shows_the_path_of_its_spec_example(
    script: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = load(script).main([])
    output = capsys.readouterr().out
    assert 0 == status, output
    assert expected == states_shown(output)
    assert output.rstrip().endswith("completed, as expected")


def test_invite_one_says_the_spec_request_is_a_replace_p2p_and_shows_the_teardown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load("invite_one").main([])
    output = capsys.readouterr().out
    assert "replacesCallId a7ebfb2d-871e-419c-87af-27290b22e8db" in output
    assert "replace_p2p" in output
    assert "call_ended updated /app/calls/a7ebfb2d-871e-419c-87af-27290b22e8db" in output


def test_invite_several_shows_callflow_refusing_the_printed_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load("invite_several").main([])
    output = capsys.readouterr().out
    assert "replacesCallId is set and 2 participants are given" in output
    assert "2 participant(s)" in output  # the roster update of the invite that followed


def test_invite_pstn_runs_as_a_script() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLFLOW_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "invite_pstn.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    assert PLAIN == states_shown(result.stdout)


# -- the real-Graph mode's configuration (nothing is sent) -----------------------------------


def test_example_refuses_incomplete_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLFLOW_TENANT_ID", "contoso")
    status = load("invite_pstn").main([])
    assert 2 == status
    assert "CALLFLOW_CLIENT_ID, CALLFLOW_CLIENT_SECRET not set" in capsys.readouterr().err


def test_example_says_what_to_install_without_azure_identity(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CALLFLOW_TENANT_ID", "CALLFLOW_CLIENT_ID", "CALLFLOW_CLIENT_SECRET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("CALLFLOW_CALL_ID", "ab6233a5-20b7-4c5e-bea2-ce56c9776429")
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # not installed, whatever is
    status = load("invite_pstn").main([])
    assert 2 == status
    assert "pip install 'callflow[azure]'" in capsys.readouterr().err


class StubCredential:
    """Stands in for azure-identity's ClientSecretCredential; it never fetches a token."""

    closed = False

    def __init__(self, *args: str) -> None:
        pass

    def get_token(self, *scopes: str) -> Any:
        raise AssertionError("no token should be needed: nothing is sent")

    def close(self) -> None:
        StubCredential.closed = True


def test_example_in_real_mode_names_the_variable_it_misses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CALLFLOW_TENANT_ID", "CALLFLOW_CLIENT_ID", "CALLFLOW_CLIENT_SECRET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("CALLFLOW_CALL_ID", "ab6233a5-20b7-4c5e-bea2-ce56c9776429")
    monkeypatch.setattr(StubCredential, "closed", False)
    identity = ModuleType("azure.identity")
    identity.ClientSecretCredential = StubCredential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.identity", identity)
    status = load("invite_pstn").main([])
    assert 2 == status
    assert "CALLFLOW_PHONE_NUMBER is not set" in capsys.readouterr().err
    assert StubCredential.closed


# -- the webhook bot ---------------------------------------------------------------------------


@asynccontextmanager
async def served_bot() -> AsyncIterator[tuple[str, Any]]:
    """The bot in fake mode under uvicorn on a free loopback port: its URL and its app."""
    bot = load("webhook_bot")
    sock = bot.listen("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    app = bot.create_app(bot.Settings.from_env(url))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(functools.partial(server.serve, sockets=[sock]))
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn's is a flag, not an event
                    await anyio.sleep(0.01)
            try:
                yield url, app
            finally:
                server.should_exit = True
    finally:
        sock.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn runs on asyncio
async def test_webhook_bot_invite_completes_through_notifications_posted_to_its_webhook() -> None:
    async with served_bot() as (url, app), httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{url}/invite", json=SPEC_REQUESTS[4])
        await app.state.fake.drain()  # the roster update that follows the completion
    assert 200 == response.status_code
    answer = response.json()
    assert "completed" == answer["state"]
    assert PLAIN == [step["state"] for step in answer["path"]]
    webhook = f"{url}/api/calls"
    expected = [("operation", webhook, 202), ("roster", webhook, 202)]
    assert expected == [(s.label, s.to, s.status_code) for s in app.state.fake.sent]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_webhook_bot_answers_400_to_an_invite_callflow_refuses() -> None:
    async with served_bot() as (url, app), httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{url}/invite", json=SPEC_REQUESTS[2])
    assert 400 == response.status_code
    assert "replacesCallId is set" in response.json()["error"]["message"]
    assert [] == app.state.fake.requests  # nothing reached the service


def test_webhook_bot_once_invites_through_its_own_http_api(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = load("webhook_bot").main(["--once", "--port", "0"])
    output = capsys.readouterr().out
    assert 0 == status, output
    assert '"state": "completed"' in output
