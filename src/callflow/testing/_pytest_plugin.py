"""callflow's pytest plugin, registered through the ``pytest11`` entry point.

A project that installs callflow gets these fixtures with no conftest. They run on the
event loop of the test that asks for them:

* in an anyio test (``@pytest.mark.anyio``; the anyio pytest plugin provides the marker and
  the ``anyio_backend`` fixture, which a module may parametrize to run on asyncio and trio),
  on anyio's test runner;
* in a test that pytest-asyncio runs (``@pytest.mark.asyncio``, or any async test with
  ``asyncio_mode = "auto"``, the usual setting in FastAPI projects), on pytest-asyncio's
  event loop for that test.

An async test that neither plugin runs fails at once with a message naming the marker.

* ``virtual_clock``: a :class:`~callflow.testing.VirtualClock` whose autojump task runs
  for the test: whenever every task waits, time jumps to the next wake-up.
* ``fake_graph``: a running :class:`~callflow.testing.FakeGraph` on ``virtual_clock``,
  delivering automatically (set ``fake_graph.manual = True`` to step through).
* ``callflow_client``: an open :class:`~callflow.Client` that sends its invites through
  ``fake_graph``'s transport, runs on ``virtual_clock``, and that ``fake_graph``
  delivers its notifications to. Its retries have no jitter, so runs repeat exactly.
  ``@pytest.mark.callflow_client(**options)`` passes ``options`` to the
  :class:`~callflow.Client` (``deadlines=``, ``recorder=``, ``on_state=``, ``retry=``,
  ``release_after=``, ...), replacing the defaults it names.

Theory of operation
-------------------
The fixtures are plain (sync) generator fixtures, so that neither pytest-asyncio's auto
mode nor anyio wraps them on its own; each runs its async part itself on the runner of
the plugin that runs the test. On pytest-asyncio's loop, the async part lives in one
task for the whole test (started by the setup, finished by the teardown), so its cancel
scopes are entered and exited in the same task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest

from .._client import Client
from .._core._retry import RetryPolicy
from ._clock import VirtualClock
from ._fake import FakeGraph

__all__ = ["virtual_clock", "fake_graph", "callflow_client"]

T = TypeVar("T")

_MARKER_HELP = (
    "callflow_client(**options): keyword arguments for the Client the callflow_client "
    "fixture opens (deadlines=, recorder=, on_state=, retry=, ...)"
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``callflow_client`` marker."""
    config.addinivalue_line("markers", _MARKER_HELP)


def _pytest_asyncio_runner(request: pytest.FixtureRequest) -> Any:
    """pytest-asyncio's runner for this test, when pytest-asyncio runs the test; else None."""
    if not request.config.pluginmanager.has_plugin("asyncio"):
        return None
    try:
        from pytest_asyncio.plugin import PytestAsyncioFunction
    except ImportError:  # another plugin registered as "asyncio"
        return None
    if not isinstance(request.node, PytestAsyncioFunction):
        return None
    marker = request.node.get_closest_marker("asyncio")
    scope = (marker.kwargs.get("loop_scope") if marker else None) or request.config.getini(
        "asyncio_default_test_loop_scope"
    )
    return request.getfixturevalue(f"_{scope or 'function'}_scoped_runner")


def _anyio_runs(request: pytest.FixtureRequest) -> bool:
    if request.node.get_closest_marker("anyio") is not None:
        return True
    return "auto" in (request.config.getoption("anyio_mode", None), _ini(request, "anyio_mode"))


def _ini(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.config.getini(name)
    except ValueError:  # an older anyio without the option
        return None


def _on_asyncio_loop(
    runner: Any, make: Callable[[], AbstractAsyncContextManager[T]]
) -> Iterator[T]:
    """Enter ``make()`` in a task of pytest-asyncio's loop; leave it in the same task."""
    started: asyncio.Future[T] | None = None
    finish: asyncio.Event | None = None

    async def host() -> None:
        assert started is not None
        assert finish is not None
        try:
            async with make() as value:
                started.set_result(value)
                await finish.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
                return
            raise

    async def setup() -> tuple[T, asyncio.Task[None]]:
        nonlocal started, finish
        started = asyncio.get_running_loop().create_future()
        finish = asyncio.Event()
        task = asyncio.get_running_loop().create_task(host())
        return await started, task

    async def teardown(task: asyncio.Task[None]) -> None:
        assert finish is not None
        finish.set()
        await task

    value, task = runner.run(setup())
    try:
        yield value
    finally:
        runner.run(teardown(task))


def _run(
    request: pytest.FixtureRequest, make: Callable[[], AbstractAsyncContextManager[T]]
) -> Iterator[T]:
    """Run the async context ``make()`` for the test, on the loop its test runs on."""
    runner = _pytest_asyncio_runner(request)
    if runner is not None:
        yield from _on_asyncio_loop(runner, make)
        return
    if not _anyio_runs(request):
        pytest.fail(
            f"callflow's {request.fixturename!r} fixture runs on the test's event loop, "
            "and no plugin runs this test on one: mark it @pytest.mark.anyio (or "
            "pytestmark = pytest.mark.anyio), or @pytest.mark.asyncio under pytest-asyncio",
            pytrace=False,
        )
    from anyio.pytest_plugin import extract_backend_and_options, get_runner

    async def fixture() -> AsyncGenerator[T]:
        async with make() as value:
            yield value

    name, options = extract_backend_and_options(request.getfixturevalue("anyio_backend"))
    with get_runner(name, options) as anyio_runner:
        yield from anyio_runner.run_asyncgen_fixture(fixture, {})


@asynccontextmanager
async def _running_clock() -> AsyncIterator[VirtualClock]:
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.autojump, name="callflow virtual clock")
        yield clock
        tg.cancel_scope.cancel()


@asynccontextmanager
async def _client(fake: FakeGraph, clock: VirtualClock, **options: Any) -> AsyncIterator[Client]:
    settings: dict[str, Any] = {
        "token": "callflow-test-token",  # the fake accepts any bearer token
        "clock": clock,
        "retry": RetryPolicy(jitter=False),
        **options,
    }
    async with fake.http_client() as http, Client(http, **settings) as client:
        fake.deliver_to(client)
        yield client
        fake.deliver_to(None)


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> Iterator[VirtualClock]:
    """A virtual clock that jumps ahead whenever every task waits on it."""
    yield from _run(request, _running_clock)


@pytest.fixture
def fake_graph(request: pytest.FixtureRequest, virtual_clock: VirtualClock) -> Iterator[FakeGraph]:
    """A fake Graph calls service on the virtual clock, running for the test."""
    yield from _run(request, lambda: FakeGraph(clock=virtual_clock))


@pytest.fixture
def callflow_client(
    request: pytest.FixtureRequest, fake_graph: FakeGraph, virtual_clock: VirtualClock
) -> Iterator[Client]:
    """A Client wired to ``fake_graph`` both ways, on the virtual clock.

    ``@pytest.mark.callflow_client(**options)`` passes keyword arguments to the Client.
    """
    marker = request.node.get_closest_marker("callflow_client")
    options = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.callflow_client takes keyword arguments only")
    yield from _run(request, lambda: _client(fake_graph, virtual_clock, **options))
