"""The ``callflow`` command: ``demo``, ``replay`` and ``diagrams``.

Theory of operation
-------------------
Each subcommand is a thin shell over the library:

* ``callflow demo`` plays :data:`callflow.testing.SCENARIOS` (the spec's five examples, a
  declined invite, a throttled one, one unanswered and cancelled at its deadline) with
  :func:`callflow.testing.run_scenario`: a :class:`~callflow.Client` against the fake
  Graph service on a virtual clock, so a 60-second ring takes no time. It prints each
  invite's path with the virtual time of each state, and exits 1 when any scenario ends
  other than expected. ``--trace-dir`` writes each scenario's trace as JSON lines, ready
  for ``callflow replay``. Then it runs a hunt and a ring group
  (:data:`~callflow.testing._flow_scenarios.WORKFLOW_SCENARIOS`).
* ``callflow replay TRACE.jsonl`` feeds each recorded invite's inputs to a fresh
  :class:`~callflow.Invite` (:func:`callflow.replay`), and each recorded workflow's to a
  fresh run (:func:`callflow.replay_workflow`), prints the path each takes, and exits 1
  when one differs from the recorded result.
* ``callflow diagrams ...`` hands the rest of the command line to
  :func:`callflow.diagrams.main`, imported only then, with a reader for ``--trace`` files.

Usage errors exit 2 with argparse's usage line. Anything else that goes wrong (an
unreadable trace, a folder that cannot be written) is one line on stderr and exit 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import anyio

from . import __version__
from ._core._flow_run import is_workflow_event, replay_workflows, workflow_path
from ._core._flows import WorkflowError
from ._core._invite import Invite
from ._core._machine import InviteState
from ._core._notifications import parse_notifications
from ._core._records import Step
from ._exceptions import CallflowError
from ._store import MemoryStore, Store
from ._trace import JsonlRecorder, TraceError, invites_of, read_trace, replay
from .testing import SCENARIOS, ScenarioResult, run_scenario
from .testing._flow_scenarios import (
    WORKFLOW_SCENARIOS,
    WorkflowScenarioResult,
    run_workflow_scenario,
)

if TYPE_CHECKING:
    from .diagrams import TracedInvite

__all__ = ["main"]


class _Symbols(NamedTuple):
    arrow: str
    ok: str
    bad: str


_GREEN, _RED, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"

#: What "the spec" means wherever the demo says it.
SPEC_LINE = (
    "the spec: Microsoft Graph's reference page for POST "
    "/communications/calls/{id}/participants/invite, whose examples 1-5 are played here"
)


def _colour(stream: IO[str]) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _symbols(stream: IO[str]) -> _Symbols:
    """Arrows and ticks when the terminal can print them, ASCII when it cannot.

    On a colour terminal the ticks are green and the crosses red.
    """
    try:
        "→✓✗…".encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        symbols = _Symbols("->", "ok", "FAILED")
    else:
        symbols = _Symbols("→", "✓", "✗")
    if _colour(stream):
        symbols = symbols._replace(
            ok=f"{_GREEN}{symbols.ok}{_RESET}", bad=f"{_RED}{symbols.bad}{_RESET}"
        )
    return symbols


def _fail(command: str, message: object) -> int:
    print(f"callflow {command}: {message}", file=sys.stderr)
    return 1


def _path(invite: Invite, started: float, arrow: str) -> str:
    """``requested → running (+0.000s) → completed (+2.000s)``: the states, with times."""
    parts = ["requested"]
    parts += [
        f"{step.dest} (+{step.at - started:.3f}s)"
        for step in invite.history
        if not step.ignored and step.dest is not step.source
    ]
    return f" {arrow} ".join(parts)


def _why(invite: Invite) -> str:
    failure = invite.failure
    if failure is None:
        return ""
    detail = ""
    if failure.result_info is not None:
        detail = f": resultInfo {failure.result_info.code}/{failure.result_info.subcode}"
    elif failure.status_code is not None:
        detail = f": HTTP {failure.status_code}"
    return f"  [{failure.reason}{detail}]"


def _steps(invite: Invite, started: float, arrow: str) -> list[str]:
    """Every step, ignored ones included, for ``--verbose``."""
    lines = []
    for step in invite.history:
        move = f"{step.source} {arrow} {step.dest}" if step.dest is not step.source else step.dest
        note = "  (ignored)" if step.ignored else ""
        lines.append(
            f"      +{step.at - started:.3f}s  {step.trigger}: {move}{note}  <- {step.cause}"
        )
    return lines


# -- demo ---------------------------------------------------------------------------------------


def _demo_line(result: ScenarioResult, symbols: _Symbols) -> str:
    scenario, invite = result.scenario, result.invite
    posts = sum(r.method == "POST" for r in result.requests)
    expected = scenario.expect.value
    if scenario.expect_reason is not None:
        expected += f" ({scenario.expect_reason})"
    if not result.as_expected:
        mark = f"{symbols.bad} expected {expected}"
    elif scenario.expect is InviteState.completed:
        mark = symbols.ok
    else:  # a failure that is the point of the scenario: say it was the expected end
        mark = f"expected {expected} {symbols.ok}"
    extra = f"  ({posts} POSTs)" if posts > 1 else ""
    path = _path(invite, result.started, symbols.arrow)
    return f"{scenario.name:<10} {scenario.kind!s:<13} {path}{_why(invite)}  {mark}{extra}"


def _workflow_line(flow: WorkflowScenarioResult, symbols: _Symbols) -> str:
    scenario, result = flow.scenario, flow.result
    mark = symbols.ok
    if not flow.as_expected:
        mark = (
            f"{symbols.bad} expected participant {scenario.expect_answered} to answer, "
            f"with {scenario.expect_deletes} DELETEs"
        )
    posts = len(flow.requests) - flow.deletes
    path = workflow_path(flow.run, symbols.arrow)
    counts = f"({posts} POSTs, {flow.deletes} DELETEs)"
    return f"{scenario.name:<10} {path}  [answered: {result.answered}]  {mark}  {counts}"


def _write_trace(directory: Path, result: ScenarioResult | WorkflowScenarioResult) -> Path:
    path = directory / f"{result.scenario.slug}.jsonl"
    with path.open("w", encoding="utf-8") as stream, JsonlRecorder(stream) as recorder:
        for event in result.events:
            recorder.record(event)
    return path


def _store(url: str | None) -> Store | None:
    """The demo's store from ``--store`` (see the parser's help).

    Raises:
        ValueError: a URL that names no store callflow has.
    """
    if url is None:
        return None
    if url == "memory":
        return MemoryStore()
    from ._redis import RedisStore

    return RedisStore(url, prefix=f"callflow-demo-{uuid.uuid4().hex[:8]}")


def _demo(args: argparse.Namespace) -> int:
    trace_dir: Path | None = args.trace_dir
    if trace_dir is not None:
        try:
            trace_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _fail("demo", f"cannot create {trace_dir}: {exc.strerror or exc}")

    try:
        store = _store(args.store)
    except ValueError as exc:
        return _fail("demo", str(exc))

    async def play() -> tuple[list[ScenarioResult], list[WorkflowScenarioResult]]:
        if store is None:
            invites = [await run_scenario(scenario) for scenario in SCENARIOS]
        else:
            invites = [await run_scenario(scenario, store=store) for scenario in SCENARIOS]
        return invites, [await run_workflow_scenario(s) for s in WORKFLOW_SCENARIOS]

    try:
        results, workflows = anyio.run(play, backend=args.backend)
    except (LookupError, ImportError) as exc:
        hint = "; install it: pip install 'callflow[trio]'" if args.backend == "trio" else ""
        return _fail("demo", f"the {args.backend} backend is not available ({exc}){hint}")
    except OSError as exc:
        return _fail("demo", f"cannot reach the store {args.store}: {exc.strerror or exc}")
    symbols = _symbols(sys.stdout)
    print(
        "callflow demo: the spec's examples, a declined invite, a throttled one and an "
        "unanswered one cancelled at its deadline, against the fake Graph service on a "
        f"virtual clock\n({SPEC_LINE})\n"
    )
    written = []
    for result in results:
        print(_demo_line(result, symbols))
        if result.scenario.note:
            print(f"{'':<11}note: {result.scenario.note}")
        if args.verbose:
            print("\n".join(_steps(result.invite, result.started, symbols.arrow)))
        if trace_dir is not None:
            try:
                written.append(_write_trace(trace_dir, result))
            except OSError as exc:
                return _fail("demo", f"cannot write a trace in {trace_dir}: {exc.strerror or exc}")
    unexpected = sum(not r.as_expected for r in results)
    summary = f"\n{len(results)} scenarios: {len(results) - unexpected} as expected"
    print(summary + (f", {unexpected} NOT as expected" if unexpected else ""))
    print("\nworkflows (client.hunt, client.ring_group), one invite per participant:\n")
    for flow in workflows:
        print(_workflow_line(flow, symbols))
        print(f"{'':<11}note: {flow.scenario.note}")
        if trace_dir is not None:
            try:
                written.append(_write_trace(trace_dir, flow))
            except OSError as exc:
                return _fail("demo", f"cannot write a trace in {trace_dir}: {exc.strerror or exc}")
    wrong = sum(not f.as_expected for f in workflows)
    summary = f"\n{len(workflows)} workflows: {len(workflows) - wrong} as expected"
    print(summary + (f", {wrong} NOT as expected" if wrong else ""))
    unexpected += wrong
    if written:
        print(f"traces written to {trace_dir} ({len(written)} files)")
    return 1 if unexpected else 0


# -- replay -------------------------------------------------------------------------------------


def _replayed(events: list[dict[str, Any]]) -> tuple[Invite, float, list[Step] | None]:
    """Replay one invite's inputs; also its start time and the recorded history, if any.

    Raises:
        TraceError: the events cannot be replayed.

    """
    inputs = [e for e in events if e.get("type") != "result"]
    invite = replay(inputs)
    started = next((e.get("at") for e in inputs if e.get("type") == "invite"), None)
    results = [e for e in events if e.get("type") == "result"]
    try:
        recorded = [Step.from_dict(s) for s in results[-1]["history"]] if results else None
        return invite, float(started if started is not None else 0.0), recorded
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceError(
            f"the recorded result of {invite.client_context} is malformed: {exc}"
        ) from None


def _replay(args: argparse.Namespace) -> int:
    trace: Path = args.trace
    try:
        events = read_trace(trace)
        groups = invites_of([e for e in events if not is_workflow_event(e)])
        flows = replay_workflows(events)
        if not groups and not flows:
            raise TraceError(f"{trace}: the trace holds no events")
        replays = [_replayed(group) for group in groups]
    except (TraceError, WorkflowError) as exc:
        return _fail("replay", exc)
    symbols = _symbols(sys.stdout)
    status = 0
    for run, recorded_result in flows:
        replayed = None if run.result is None else run.result.to_dict()
        if recorded_result is None:
            verdict = "(no recorded result to compare with)"
        elif recorded_result == replayed:
            verdict = f"{symbols.ok} matches the recorded result"
        else:
            status = 1
            verdict = f"{symbols.bad} differs from the recorded result {recorded_result}"
        answered = "" if run.result is None else f"  [answered: {run.result.answered}]"
        path = workflow_path(run, symbols.arrow)
        print(f"workflow {run.workflow.name}  {path}{answered}  {verdict}")
    for invite, started, recorded in replays:
        path = _path(invite, started, symbols.arrow)
        if recorded is None:
            verdict = "(no recorded result to compare with)"
        elif recorded == list(invite.history):
            verdict = f"{symbols.ok} matches the recorded result"
        else:
            status = 1
            shown = Invite.from_dict(
                {**invite.to_dict(), "history": [s.to_dict() for s in recorded]}
            )
            verdict = (
                f"{symbols.bad} differs from the recorded result, which was "
                f"{_path(shown, started, symbols.arrow)}"
            )
        print(f"{invite.client_context}  {invite.kind}  {path}{_why(invite)}  {verdict}")
        if args.verbose:
            print("\n".join(_steps(invite, started, symbols.arrow)))
    return status


# -- diagrams -----------------------------------------------------------------------------------


def _trace_for_diagrams(path: Path) -> Iterator[TracedInvite]:
    """Read a trace for ``callflow diagrams --trace``: each invite's path and messages.

    Raises:
        TraceError: the trace cannot be read or replayed.

    """
    from .diagrams import Message, TracedInvite  # diagrams load only when asked for

    for events in invites_of([e for e in read_trace(path) if not is_workflow_event(e)]):
        invite, _, _ = _replayed(events)
        messages = []
        for event in events:
            kind, at = event.get("type"), event.get("at")
            if kind == "invite":
                label = f"POST /communications/calls/{event.get('call_id')}/participants/invite"
                messages.append(Message("Bot", "Graph", label, at=at))
            elif kind == "response":
                messages.append(Message("Graph", "Bot", f"HTTP {event.get('status_code')}", at=at))
            elif kind in ("outcome_unknown", "send_failed"):
                messages.append(Message("Graph", "Bot", str(event.get("reason")), at=at))
            elif kind == "notification":
                notes = parse_notifications(event["notification"])
                messages.extend(Message("Graph", "Bot", n.describe(), at=at) for n in notes)
            elif kind == "timeout":
                label = f"deadline of {event.get('state')} passed"
                messages.append(Message("Bot", "Bot", label, at=at))
        yield TracedInvite(invite.client_context, invite.kind, invite.history, messages)


def _diagrams(argv: list[str]) -> int:
    try:
        from . import diagrams  # loaded only for this subcommand
    except ImportError as exc:
        return _fail("diagrams", f"not available: {exc}")
    run = getattr(diagrams, "main", None)
    if not callable(run):
        return _fail("diagrams", "not available in this version of callflow")
    options: dict[str, Any] = {}
    if "load_trace" in inspect.signature(run).parameters:
        options["load_trace"] = _trace_for_diagrams
    if "play_flows" in inspect.signature(run).parameters:
        from .testing import spec_flows  # the spec's examples, played on the fake service

        options["play_flows"] = spec_flows
    try:
        return int(run(argv, **options))
    except CallflowError as exc:
        return _fail("diagrams", exc)


# -- the command --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callflow",
        description="Each Microsoft Graph participant invite as a state machine.",
    )
    parser.add_argument("--version", action="version", version=f"callflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the spec's examples against a fake Graph on a virtual clock",
        description="Run the spec's examples 1 to 5, a declined invite and a throttled "
        "one against the fake Graph service on a virtual clock; show each invite's path.",
    )
    demo.add_argument(
        "--trace-dir",
        type=Path,
        metavar="DIR",
        help="write each scenario's trace into DIR, as JSON lines (default: none written)",
    )
    demo.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (default: %(default)s; trio needs callflow[trio])",
    )
    demo.add_argument(
        "-v", "--verbose", action="store_true", help="show every step (default: the path only)"
    )
    demo.add_argument(
        "--store",
        metavar="URL",
        help="keep the invites in this store: redis://host:port/db (a fresh key prefix per "
        "run) or 'memory' (default: none, they stay in the Client's process)",
    )
    again = commands.add_parser(
        "replay",
        help="replay a recorded trace and show the path it takes",
        description="Feed a trace's recorded inputs to fresh invites and show their paths.",
    )
    again.add_argument("trace", type=Path, metavar="TRACE.jsonl")
    again.add_argument("-v", "--verbose", action="store_true", help="show every step")
    commands.add_parser(
        "diagrams",
        help="draw the invite state machines (callflow diagrams --help)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``callflow`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 for success, 1 when something did not go as it should, 2 for
        a usage error.

    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["diagrams"]:
        return _diagrams(arguments[1:])
    try:
        args = _parser().parse_args(arguments)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return _demo(args) if args.command == "demo" else _replay(args)
    except BrokenPipeError:  # the reader went away (`callflow demo | head`): not an error
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
