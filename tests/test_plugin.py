"""The pytest plugin reaches a project through its entry point: no conftest, no imports.

Each test writes a small project with pytester and runs pytest on it in a subprocess, as
a project that installed callflow would.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

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
