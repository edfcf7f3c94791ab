"""The ``callflow`` command, run in-process through ``main`` and once as ``python -m callflow``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

import callflow
import callflow.diagrams
from callflow import _cli
from callflow._cli import main
from callflow.testing import SCENARIOS

Trace = Callable[[Path], Iterable[Any]]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's traces, written once for the module."""
    directory = tmp_path_factory.mktemp("traces")
    assert 0 == main(["demo", "--trace-dir", str(directory)])
    return directory


def _one_error_line(err: str, command: str) -> None:
    assert "Traceback" not in err
    assert 1 == len(err.strip().splitlines())
    assert err.startswith(f"callflow {command}: ")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# -- demo ---------------------------------------------------------------------------------------


def test_demo_shows_each_scenarios_path_with_timings(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["demo"])

    lines = _lines(capsys.readouterr().out)
    assert (
        "example 3  replace_p2p   requested → running (+0.000s) → "
        "tearing_down_original (+2.000s) → completed (+2.100s)  ✓"
    ) in lines
    assert (
        "declined   invite        requested → running (+0.000s) → failed (+2.000s)  "
        "[operation_failed: resultInfo 603/0]  expected failed (operation_failed) ✓"
    ) in lines
    assert (
        "throttled  invite        requested → running (+1.000s) → completed (+3.000s)  ✓  (2 POSTs)"
    ) in lines
    assert "8 scenarios: 8 as expected" in lines


def test_demo_runs_every_scenario_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["demo"])

    names = {s.name for s in SCENARIOS}
    shown = [line[:10].rstrip() for line in _lines(capsys.readouterr().out)]
    assert [s.name for s in SCENARIOS] == [name for name in shown if name in names]


def test_demo_says_why_example_2_is_invited_as_its_answer_echoes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["demo"])

    out = capsys.readouterr().out
    example_2 = out[out.index("example 2") : out.index("example 3")]
    assert "replacesCallId null" in example_2
    assert "callflow refuses" in example_2


def test_demo_on_trio(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["demo", "--backend", "trio"])

    assert "8 scenarios: 8 as expected" in capsys.readouterr().out


def test_demo_verbose_shows_every_step_including_ignored_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["demo", "--verbose"])

    out = capsys.readouterr().out
    assert "+2.150s  original_gone: completed  (ignored)" in out


def test_demo_exits_1_when_a_scenario_ends_other_than_expected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = attrs.evolve(SCENARIOS[3], expect=callflow.InviteState.failed)
    monkeypatch.setattr(_cli, "SCENARIOS", (wrong,))

    assert 1 == main(["demo"])

    out = capsys.readouterr().out
    assert "✗ expected failed" in out
    assert "1 scenarios: 0 as expected, 1 NOT as expected" in out


def test_demo_writes_one_trace_per_scenario(traces: Path) -> None:
    assert {f"{s.slug}.jsonl" for s in SCENARIOS} == {p.name for p in traces.iterdir()}


def test_demo_cannot_write_its_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    assert 1 == main(["demo", "--trace-dir", str(blocker / "traces")])

    _one_error_line(capsys.readouterr().err, "demo")


# -- replay -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.slug)
def test_replay_of_each_demo_trace_matches_its_recorded_result(
    scenario: callflow.testing.Scenario, traces: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["replay", str(traces / f"{scenario.slug}.jsonl")])

    out = capsys.readouterr().out
    assert out.rstrip().endswith("✓ matches the recorded result")
    assert f"  {scenario.kind}  requested → " in out


def test_replay_prints_the_path_it_takes(traces: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["replay", str(traces / "example-5.jsonl")])

    assert (
        "f2fa86af-3c51-4bc2-8fc0-475452d9764f  move_meeting  requested → running (+0.000s) → "
        "tearing_down_original (+2.000s) → completed (+2.100s)  ✓ matches the recorded result\n"
    ) == capsys.readouterr().out


def test_replay_exits_1_when_the_path_differs_from_the_recorded_result(
    traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [json.loads(line) for line in (traces / "example-4.jsonl").read_text().splitlines()]
    result = next(e for e in events if e["type"] == "result")
    result["history"] = result["history"][:1]  # as if it had stopped in running
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(json.dumps(e) + "\n" for e in events))

    assert 1 == main(["replay", str(tampered)])

    out = capsys.readouterr().out
    assert "✗ differs from the recorded result, which was requested → running (+0.000s)\n" in out


def test_replay_of_a_trace_without_a_result_says_there_is_nothing_to_compare(
    traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (traces / "example-4.jsonl").read_text().splitlines()
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(line for line in lines if '"type": "result"' not in line))

    assert 0 == main(["replay", str(partial)])

    assert "(no recorded result to compare with)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing file"),
        pytest.param("{not json\n", id="invalid JSON"),
        pytest.param("", id="empty"),
        pytest.param('{"type": "response", "at": 0}\n', id="no invite event"),
        pytest.param('{"no": "type"}\n', id="not an event"),
        pytest.param('{"type": "invite", "x": ' + "[" * 100_000 + "\n", id="nested too deep"),
        pytest.param('{"type": "invite", "at": ' + "9" * 5000 + "}\n", id="integer too long"),
    ],
)
def test_replay_of_an_unusable_trace_is_one_line_on_stderr(
    content: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.jsonl"
    if content is not None:
        trace.write_text(content)

    assert 1 == main(["replay", str(trace)])

    _one_error_line(capsys.readouterr().err, "replay")


# -- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [[], ["bogus"], ["replay"], ["demo", "--backend", "curio"]], ids=str
)
def test_a_usage_error_exits_2_with_the_usage(
    argv: Sequence[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(argv)

    assert "usage: callflow" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["--version"])

    assert f"callflow {callflow.__version__}\n" == capsys.readouterr().out


# -- diagrams -----------------------------------------------------------------------------------


@pytest.fixture
def diagrams_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], Trace]]:
    """Stands in for callflow.diagrams.main; records each call."""
    calls: list[tuple[list[str], Trace]] = []

    def fake_main(argv: Sequence[str], *, load_trace: Trace) -> int:
        calls.append((list(argv), load_trace))
        return 7

    monkeypatch.setattr(callflow.diagrams, "main", fake_main)
    return calls


def test_diagrams_gets_the_rest_of_the_command_line(
    diagrams_calls: list[tuple[list[str], Trace]],
) -> None:
    assert 7 == main(["diagrams", "--out", "x", "--format", "dot"])

    assert [["--out", "x", "--format", "dot"]] == [argv for argv, _ in diagrams_calls]


def test_diagrams_reads_traces_by_replaying_each_invite(
    diagrams_calls: list[tuple[list[str], Trace]], traces: Path
) -> None:
    main(["diagrams"])
    load_trace = diagrams_calls[0][1]

    (invite,) = list(load_trace(traces / "example-3.jsonl"))

    recorded = callflow.replay(callflow.read_trace(traces / "example-3.jsonl"))
    assert callflow.InviteKind.replace_p2p == invite.kind
    assert recorded.history == invite.steps
    assert invite.messages[0].label.startswith("POST /communications/calls/")
    assert ("Graph", "Bot", "HTTP 200") == (
        invite.messages[1].sender,
        invite.messages[1].receiver,
        invite.messages[1].label,
    )


def test_diagrams_without_a_main_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(callflow.diagrams, "main")

    assert 1 == main(["diagrams"])

    _one_error_line(capsys.readouterr().err, "diagrams")


def test_diagrams_of_an_unreadable_trace_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["diagrams", "--format", "mermaid", "--out", str(tmp_path), "--trace"]

    assert 1 == main([*argv, str(tmp_path / "missing.jsonl")])

    _one_error_line(capsys.readouterr().err, "diagrams")


# -- as a program -------------------------------------------------------------------------------


def test_python_m_callflow_demo_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callflow", "demo"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )

    assert 0 == done.returncode, done.stderr
    assert "8 scenarios: 8 as expected" in done.stdout


def test_demo_on_trio_without_trio_names_the_extra() -> None:
    # A fresh interpreter in which trio cannot be imported, as if it were not installed.
    code = (
        "import sys; sys.modules['trio'] = None; "
        "from callflow._cli import main; sys.exit(main(['demo', '--backend', 'trio']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert 1 == done.returncode
    _one_error_line(done.stderr, "demo")
    assert "pip install 'callflow[trio]'" in done.stderr


def test_demo_says_a_declined_invite_was_expected_to_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 0 == main(["demo"])
    out = capsys.readouterr().out.splitlines()
    [declined] = [line for line in out if line.startswith("declined ")]
    assert declined.endswith("expected failed (operation_failed) ✓")


def test_demo_explains_the_spec_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo"])
    [line] = [line for line in capsys.readouterr().out.splitlines() if "the spec:" in line]
    assert "/communications/calls/{id}/participants/invite" in line


class Terminal(io.StringIO):
    """A captured stdout that says it is a terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False), ("", True)])
def test_demo_colours_its_ticks_on_a_terminal_unless_no_color_is_set(
    no_color: str | None, coloured: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert 0 == main(["demo"])
    assert coloured == ("\x1b[32m✓\x1b[0m" in terminal.getvalue())
    assert coloured == ("\x1b[" in terminal.getvalue())


def test_demo_is_not_coloured_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo"])
    assert "\x1b[" not in capsys.readouterr().out


def test_demo_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: asyncio; trio needs callflow[trio])" in out
    assert "(default: none written)" in out


def _without_graphviz(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``callflow diagrams`` with a PATH on which there is no ``dot``."""
    code = "import sys; from callflow._cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "diagrams", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": str(tmp_path / "no-graphviz-here")},
    )


def test_diagrams_without_graphviz_write_mermaid_and_dot_and_say_what_was_skipped(
    tmp_path: Path,
) -> None:
    done = _without_graphviz(tmp_path)

    assert 0 == done.returncode, done.stderr
    _one_error_line(done.stderr, "diagrams")
    assert "skipped SVG and PNG" in done.stderr
    assert "dot" in done.stderr
    assert list(tmp_path.glob("*.mmd"))
    assert list(tmp_path.glob("*.dot"))
    assert [] == list(tmp_path.glob("*.svg")) + list(tmp_path.glob("*.png"))


def test_diagrams_asked_for_svg_without_graphviz_fail_naming_the_fix(tmp_path: Path) -> None:
    done = _without_graphviz(tmp_path, "--format", "svg")

    assert 1 == done.returncode
    _one_error_line(done.stderr, "diagrams")
    assert "--format mermaid --format dot" in done.stderr
