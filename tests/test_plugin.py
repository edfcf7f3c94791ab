"""The pytest plugin reaches a project through its entry point: no conftest, no imports.

Each test writes a small project with pytester and runs pytest on it in a subprocess, as
a project that installed callflow would.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: pytest-asyncio is installed with callflow's test dependencies; it warns at start-up
#: unless a project sets its fixtures' loop scope, as projects that use it do.
QUIET_PYTEST_ASYNCIO = '[pytest]\nasyncio_default_fixture_loop_scope = "function"\n'


@pytest.fixture(autouse=True)
def project_config(pytester: pytest.Pytester) -> None:
    pytester.makeini(QUIET_PYTEST_ASYNCIO.replace('"', ""))


PROJECT_TEST = """
import pytest

import callflow

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def test_an_invite_completes(callflow_client, fake_graph, virtual_clock):
    participant = {"identity": {"phone": {"id": "+12345678901"}}}
    handle = await callflow_client.invite("call-1", [participant])

    assert await handle.wait() is callflow.InviteState.completed
    assert ["200"] == [r.answer for r in fake_graph.requests]
    assert 2.0 == virtual_clock.now()
"""


def test_a_project_gets_the_fixtures_with_no_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bot=PROJECT_TEST)

    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")

    assert [] == list(pytester.path.glob("**/conftest.py"))
    result.assert_outcomes(passed=2)


def test_the_fixtures_come_from_callflows_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bot=PROJECT_TEST)

    result = pytester.runpytest_subprocess("-p", "no:callflow", "-p", "no:cacheprovider")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'callflow_client' not found*"])


def test_the_fixtures_are_listed_as_callflows(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from callflow.testing._pytest_plugin*",
            "virtual_clock -- *",
            "fake_graph -- *",
            "callflow_client -- *",
        ]
    )


# -- pytest-asyncio projects (issue 16, item 2) ------------------------------------------------

ASYNCIO_AUTO_TEST = """
import pytest

import callflow


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_marked_anyio(callflow_client, fake_graph, virtual_clock):
    participant = {"identity": {"phone": {"id": "+12345678901"}}}
    handle = await callflow_client.invite("call-1", [participant])
    assert await handle.wait() is callflow.InviteState.completed
    assert 2.0 == virtual_clock.now()


async def test_unmarked_in_auto_mode(callflow_client, fake_graph, virtual_clock):
    participant = {"identity": {"phone": {"id": "+12345678901"}}}
    handle = await callflow_client.invite("call-2", [participant])
    assert await handle.wait() is callflow.InviteState.completed
    assert ["200"] == [r.answer for r in fake_graph.requests]


@pytest.mark.asyncio
async def test_marked_asyncio(virtual_clock):
    await virtual_clock.sleep(30)
    assert 30.0 == virtual_clock.now()
"""


def test_the_fixtures_work_in_a_pytest_asyncio_auto_mode_project(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_bot=ASYNCIO_AUTO_TEST)

    result = pytester.runpytest_subprocess(
        "-W", "error", "-p", "no:cacheprovider", "-o", "timeout=20"
    )

    result.assert_outcomes(passed=3)


def test_an_unmarked_test_is_told_to_mark_it_anyio(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_bot="""
async def test_forgot_the_marker(callflow_client):
    pass
"""
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    assert 0 != result.ret
    result.stdout.fnmatch_lines(["*mark it @pytest.mark.anyio*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_the_client_marker_passes_options_to_the_client(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bot="""
import pytest

import callflow

pytestmark = pytest.mark.anyio
recorder = callflow.MemoryRecorder()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.callflow_client(
    deadlines=callflow.Deadlines(running=5.0), recorder=recorder, release_after=1.0
)
async def test_configured(callflow_client, fake_graph):
    from callflow.testing import NeverAnswers

    fake_graph.script("+12345678901", NeverAnswers())
    participant = {"identity": {"phone": {"id": "+12345678901"}}}
    handle = await callflow_client.invite("call-1", [participant], client_context="cfg")
    with pytest.raises(callflow.InviteFailed, match="timeout"):
        await handle.wait()
    assert callflow_client.recorder is recorder
    assert "timeout" in [e["type"] for e in recorder.of("cfg")]
    assert 1.0 == callflow_client.release_after
"""
    )

    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)
