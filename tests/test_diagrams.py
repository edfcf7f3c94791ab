"""The diagrams draw exactly the machine, render when Graphviz is there, and stay current."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spec_examples
from callflow import diagrams
from callflow._core._machine import (
    TABLES,
    TERMINAL_STATES,
    InviteKind,
    InviteState,
    Trigger,
    states_of,
)
from callflow._exceptions import CallflowError
from callflow._flow_diagrams import write_flow_diagrams
from callflow.testing import spec_flows

KINDS = list(InviteKind)
COMMITTED = Path(__file__).parents[1] / "diagrams"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

Edge = tuple[str, str, str, "str | None"]  # source, trigger, dest, condition


@attrs.frozen
class Step:
    """Shaped like callflow's own history step (diagrams.StepLike)."""

    trigger: Trigger
    source: InviteState
    dest: InviteState
    cause: str = "test"
    at: float = 0.0
    ignored: bool = False


def committed_flows() -> Mapping[str, Sequence[diagrams.Message]]:
    """The flows drawn in the committed diagrams/ folder: the spec's examples."""
    return spec_flows()


def table_edges(kind: InviteKind) -> set[Edge]:
    return {
        (source.value, trigger.value, dest.value, condition)
        for (source, trigger), rows in TABLES[kind].items()
        for dest, condition in rows
    }


_LABEL_LINE = re.compile(
    r"(?:\((?P<steps>\d+(?:, \d+)*)\) )?(?P<trigger>\w+)(?: \[(?P<cond>\w+)\])?"
)


def parse_label(line: str) -> tuple[str, str | None, str | None]:
    """``(2, 4) trigger [condition]`` -> (trigger, condition, "2, 4")."""
    match = _LABEL_LINE.fullmatch(line)
    assert match is not None, f"unexpected edge label {line!r}"
    return match["trigger"], match["cond"], match["steps"]


def mermaid_edges(text: str) -> list[tuple[str, str, list[str]]]:
    """(source, dest, label lines) of every ``a --> b: label`` between two states."""
    found = re.findall(r"^ {4}(\w+) --> (\w+): (.*)$", text, re.MULTILINE)
    return [(source, dest, label.split("<br>")) for source, dest, label in found]


_DOT_EDGE = re.compile(r'^ {4}"(\w+)" -> "(\w+)" \[label="([^"]*)"(.*)\]$', re.MULTILINE)


def dot_edges(text: str) -> list[tuple[str, str, list[str]]]:
    """(source, dest, label lines) of every edge between two states."""
    found = _DOT_EDGE.findall(text)
    return [(source, dest, dot_label_lines(label)) for source, dest, label, _ in found]


def dot_edge_attributes(text: str) -> list[tuple[list[str], str]]:
    """(label lines, the other attributes) of every edge between two states."""
    return [(dot_label_lines(label), rest) for _, _, label, rest in _DOT_EDGE.findall(text)]


def dot_label_lines(label: str) -> list[str]:
    """One line per trigger: a ``[condition]`` line belongs to the trigger above it."""
    lines: list[str] = []
    for line in label.split(r"\n"):
        if line.startswith("["):
            lines[-1] += f" {line}"
        else:
            lines.append(line)
    return lines


def dot_nodes(text: str) -> dict[str, str]:
    """State name -> its attribute list (empty when it has none)."""
    found = re.findall(r'^ {4}"(\w+)"(?: \[(.*)\])?$', text, re.MULTILINE)
    return dict(found)


def as_edges(parsed: Sequence[tuple[str, str, list[str]]]) -> set[Edge]:
    edges = set()
    for source, dest, lines in parsed:
        for line in lines:
            trigger, condition, _steps = parse_label(line)
            edges.add((source, trigger, dest, condition))
    return edges


def count_edges(parsed: Sequence[tuple[str, str, list[str]]]) -> int:
    return sum(len(lines) for _, _, lines in parsed)


# --- the state diagrams draw the machine ----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_mermaid_edges_are_the_machine_table(kind: InviteKind) -> None:
    parsed = mermaid_edges(diagrams.state_diagram(kind, fmt="mermaid"))

    assert table_edges(kind) == as_edges(parsed)
    assert len(table_edges(kind)) == count_edges(parsed)


@pytest.mark.parametrize("kind", KINDS)
def test_dot_edges_are_the_machine_table(kind: InviteKind) -> None:
    parsed = dot_edges(diagrams.state_diagram(kind, fmt="dot"))

    assert table_edges(kind) == as_edges(parsed)
    assert len(table_edges(kind)) == count_edges(parsed)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_every_state_and_trigger_of_the_kind_is_drawn(kind: InviteKind, fmt: str) -> None:
    text = diagrams.state_diagram(kind, fmt="mermaid" if fmt == "mermaid" else "dot")
    edges = as_edges(mermaid_edges(text) if fmt == "mermaid" else dot_edges(text))

    drawn_states = {s for s, _, d, _ in edges} | {d for _, _, d, _ in edges}
    assert {s.value for s in states_of(kind)} == drawn_states
    assert {t.value for _, t in TABLES[kind]} == {t for _, t, _, _ in edges}


def test_reflexive_edges_are_drawn() -> None:
    reflexive = ("requested", "response_unknown", "requested", None)

    for kind in KINDS:
        assert reflexive in as_edges(mermaid_edges(diagrams.state_diagram(kind)))
        assert reflexive in as_edges(dot_edges(diagrams.state_diagram(kind, fmt="dot")))


def test_conditions_are_shown_in_brackets() -> None:
    text = diagrams.state_diagram(InviteKind.replace_p2p)

    assert "running --> completed: operation_completed [original_already_gone]" in text


@pytest.mark.parametrize("kind", KINDS)
def test_mermaid_is_a_left_to_right_state_diagram_entered_at_requested(kind: InviteKind) -> None:
    lines = diagrams.state_diagram(kind).splitlines()

    assert ["stateDiagram-v2", "    direction LR", "    [*] --> requested"] == [
        lines[3],
        lines[4],
        *[line for line in lines if line.startswith("    [*]")],
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_mermaid_marks_terminal_states(kind: InviteKind) -> None:
    text = diagrams.state_diagram(kind)
    terminal = {s.value for s in states_of(kind) if s in TERMINAL_STATES}

    assert terminal == set(re.findall(r"^ {4}(\w+) --> \[\*\]$", text, re.MULTILINE))
    styled = re.findall(r"^ {4}class (\w+) (end_\w+)$", text, re.MULTILINE)
    assert {(state, f"end_{state}") for state in terminal} == set(styled)
    assert {f"end_{state}" for state in terminal} == set(
        re.findall(r"^ {4}classDef (\w+) fill:", text, re.MULTILINE)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_dot_draws_terminal_states_as_double_circles(kind: InviteKind) -> None:
    nodes = dot_nodes(diagrams.state_diagram(kind, fmt="dot"))

    assert {s.value for s in states_of(kind)} == set(nodes)
    doubled = {name for name, attrs_ in nodes.items() if 'shape="doublecircle"' in attrs_}
    assert {s.value for s in states_of(kind) if s in TERMINAL_STATES} == doubled


def test_dot_is_left_to_right_and_starts_in_requested() -> None:
    text = diagrams.state_diagram(InviteKind.invite, fmt="dot")

    assert 'rankdir="LR"' in text
    assert '    __start__ -> "requested"' in text.splitlines()


def test_unknown_diagram_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'svg'"):
        diagrams.state_diagram(InviteKind.invite, fmt="svg")  # type: ignore[arg-type]


# --- rendering ------------------------------------------------------------------------------


def test_graphviz_is_installed_for_this_test_run() -> None:
    assert shutil.which("dot"), "the render tests need Graphviz: apt-get install graphviz"


@pytest.mark.parametrize("kind", KINDS)
def test_svg_renders_as_xml(kind: InviteKind) -> None:
    svg = diagrams.render(diagrams.state_diagram(kind, fmt="dot"), "svg")

    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert kind.value in svg.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_png_renders(kind: InviteKind) -> None:
    png = diagrams.render(diagrams.state_diagram(kind, fmt="dot"), "png")

    assert png.startswith(PNG_MAGIC)


def test_write_diagrams_writes_every_format(tmp_path: Path) -> None:
    written = diagrams.write_diagrams(tmp_path)

    expected = [f"{k}{ext}" for k in KINDS for ext in (".mmd", ".dot", ".svg", ".png")]
    assert [*expected, "README.md"] == [path.name for path in written]
    assert all(path.stat().st_size > 0 for path in written)
    assert (tmp_path / "invite.png").read_bytes().startswith(PNG_MAGIC)
    ET.fromstring((tmp_path / "invite.svg").read_bytes())


def test_without_dot_svg_raises_graphviz_missing_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    dot = diagrams.state_diagram(InviteKind.invite, fmt="dot")

    with pytest.raises(diagrams.GraphvizMissing) as caught:
        diagrams.render(dot, "svg")

    message = str(caught.value)
    assert "apt-get install graphviz" in message
    assert "\n" not in message
    assert isinstance(caught.value, CallflowError)
    assert isinstance(caught.value, RuntimeError)


def test_without_dot_mermaid_and_dot_text_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    out = tmp_path / "out"

    written = diagrams.write_diagrams(out, formats=("mermaid", "dot"))

    assert diagrams.state_diagram(InviteKind.invite).startswith("---\n")
    assert 7 == len(written)


def test_without_dot_write_diagrams_fails_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(diagrams.GraphvizMissing, match="apt-get install graphviz"):
        diagrams.write_diagrams(tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_without_the_graphviz_package_the_hint_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail

    with pytest.raises(diagrams.GraphvizMissing, match=r"pip install 'callflow\[diagrams\]'"):
        diagrams.render(diagrams.state_diagram(InviteKind.invite, fmt="dot"), "png")


def test_unknown_image_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown image format 'gif'"):
        diagrams.render("digraph {}", "gif")  # type: ignore[arg-type]


# --- the committed diagrams/ folder ---------------------------------------------------------


def test_committed_diagrams_match_the_machine(tmp_path: Path) -> None:
    diagrams.write_diagrams(tmp_path, flows=committed_flows())
    write_flow_diagrams(tmp_path, formats=("mermaid", "dot"))  # diagrams/hunt.*, ring_group.*

    def texts(folder: Path) -> dict[str, str]:
        files = [*folder.glob("*.mmd"), *folder.glob("*.dot"), folder / "README.md"]
        return {p.name: p.read_text(encoding="utf-8") for p in files if p.exists()}

    fresh, committed = texts(tmp_path), texts(COMMITTED)
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, (
        f"diagrams/ is stale ({', '.join(stale)}): python -m callflow.diagrams --out diagrams"
    )


def test_write_diagrams_is_deterministic(tmp_path: Path) -> None:
    flows = {"hello": [diagrams.Message("Bot", "Graph", "hi; there", at=1.5)]}

    first = diagrams.write_diagrams(tmp_path / "a", formats=("mermaid", "dot"), flows=flows)
    second = diagrams.write_diagrams(tmp_path / "b", formats=("mermaid", "dot"), flows=flows)

    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_readme_shows_each_diagram_inline_and_links_the_svgs(tmp_path: Path) -> None:
    flows = {"hello": [diagrams.Message("Bot", "Graph", "hi")]}
    diagrams.write_diagrams(tmp_path, flows=flows)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")

    blocks = re.findall(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert [diagrams.state_diagram(kind) for kind in KINDS] + [
        (tmp_path / "flow-hello.mmd").read_text(encoding="utf-8")
    ] == blocks
    assert all(f"]({kind}.svg)" in readme for kind in KINDS)


def test_write_diagrams_refuses_unknown_formats_and_odd_flow_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown formats"):
        diagrams.write_diagrams(tmp_path, formats=("mermaid", "pdf"))
    with pytest.raises(ValueError, match="plain file names"):
        diagrams.write_diagrams(tmp_path, formats=("mermaid",), flows={"../up": []})


# --- traces ---------------------------------------------------------------------------------

REPLACE_STEPS = [
    Step(Trigger.response_unknown, InviteState.requested, InviteState.requested, at=10.0),
    Step(Trigger.accepted, InviteState.requested, InviteState.running, at=10.4),
    Step(Trigger.accepted, InviteState.running, InviteState.running, at=10.5, ignored=True),
    Step(Trigger.operation_completed, InviteState.running, InviteState.tearing_down_original),
]


def test_trace_numbers_the_path_in_order() -> None:
    parsed = mermaid_edges(diagrams.trace_state_diagram(InviteKind.replace_p2p, REPLACE_STEPS))

    numbered = sorted(
        (int(steps), (source, trigger, dest))
        for source, dest, lines in parsed
        for trigger, _, steps in map(parse_label, lines)
        if steps
    )
    assert [
        (1, ("requested", "response_unknown", "requested")),
        (2, ("requested", "accepted", "running")),
        (3, ("running", "operation_completed", "tearing_down_original")),
    ] == numbered


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_trace_still_draws_every_transition_once(fmt: str) -> None:
    kind = InviteKind.replace_p2p
    text = diagrams.trace_state_diagram(
        kind, REPLACE_STEPS, fmt="dot" if fmt == "dot" else "mermaid"
    )
    parsed = dot_edges(text) if fmt == "dot" else mermaid_edges(text)

    assert table_edges(kind) == as_edges(parsed)
    assert len(table_edges(kind)) == count_edges(parsed)


def test_trace_mermaid_fills_visited_states_and_marks_the_current_one() -> None:
    text = diagrams.trace_state_diagram(InviteKind.replace_p2p, REPLACE_STEPS)

    classes = dict(re.findall(r"^ {4}class ([\w,]+) (\w+)$", text, re.MULTILINE))
    assert {
        "cancelled": "end_cancelled",
        "completed": "end_completed",
        "failed": "end_failed",
        "requested,running": "visited",
        "tearing_down_original": "current",
    } == classes


def test_trace_dot_colours_the_path_and_greys_the_rest() -> None:
    text = diagrams.trace_state_diagram(InviteKind.replace_p2p, REPLACE_STEPS, fmt="dot")

    for lines, attributes in dot_edge_attributes(text):
        taken = parse_label(lines[0])[2] is not None
        assert ('penwidth="3"' in attributes) is taken
    nodes = dot_nodes(text)
    assert 'penwidth="5"' in nodes["tearing_down_original"]
    assert 'fillcolor="#ffe0b2"' in nodes["running"]
    assert "penwidth" not in nodes["failed"]
    assert r"3. operation_completed: running -> tearing_down_original" in text


def test_ignored_steps_are_not_part_of_the_path() -> None:
    text = diagrams.trace_state_diagram(InviteKind.replace_p2p, REPLACE_STEPS)

    assert "running --> running: original_gone" in text  # not split out, not numbered
    assert "(4)" not in text


def test_an_empty_trace_is_current_in_requested() -> None:
    text = diagrams.trace_state_diagram(InviteKind.invite, [])

    assert "    class requested current" in text


def test_a_step_the_machine_does_not_have_is_refused() -> None:
    step = Step(Trigger.original_gone, InviteState.requested, InviteState.requested)

    with pytest.raises(ValueError, match="invite has no transition original_gone from requested"):
        diagrams.trace_state_diagram(InviteKind.invite, [step])


@st.composite
def walks(draw: st.DrawFn) -> tuple[InviteKind, list[Step]]:
    """A kind and a path through its machine, taken one table row at a time."""
    kind = draw(st.sampled_from(KINDS))
    state, steps = InviteState.requested, list[Step]()
    for _ in range(draw(st.integers(0, 6))):
        choices = [(t, d) for (s, t), rows in TABLES[kind].items() if s is state for d, _ in rows]
        if not choices:
            break
        trigger, dest = draw(st.sampled_from(sorted(choices)))
        steps.append(Step(trigger, state, dest, at=float(len(steps))))
        state = dest
    return kind, steps


@given(walks())
def test_any_walk_is_drawn_numbered_and_ends_on_the_current_state(
    walk: tuple[InviteKind, list[Step]],
) -> None:
    kind, steps = walk
    text = diagrams.trace_state_diagram(kind, steps)

    numbered: dict[int, tuple[str, str, str]] = {}
    for source, dest, lines in mermaid_edges(text):
        for trigger, _, numbers in map(parse_label, lines):
            for number in numbers.split(", ") if numbers else ():
                numbered[int(number)] = (source, trigger, dest)
    assert [(s.source.value, s.trigger.value, s.dest.value) for s in steps] == [
        numbered[n] for n in sorted(numbered)
    ]
    current = steps[-1].dest if steps else InviteState.requested
    assert re.search(rf"^ {{4}}class {current} current$", text, re.MULTILINE)


# --- sequence diagrams ----------------------------------------------------------------------


def test_sequence_diagram_escapes_what_mermaid_reads_as_syntax() -> None:
    message = diagrams.Message("Bot", "Graph", "a;b #c: d%%e", note='say "hi" <b>')

    lines = diagrams.sequence_diagram([message]).splitlines()

    assert "    Bot->>Graph: a#59;b #35;c#58; d#37;#37;e" in lines
    assert "    Note over Bot,Graph: say #quot;hi#quot; #lt;b#gt;" in lines


_ENTITY = re.compile(r"#(\d+|quot|lt|gt);")
_NAMED = {"quot": '"', "lt": "<", "gt": ">"}


def mermaid_decode(text: str) -> str:
    """What Mermaid draws for message text: entity codes decoded, ``<br>`` a new line."""
    lines = text.split("<br>")
    decode = lambda m: _NAMED.get(m[1]) or chr(int(m[1]))  # noqa: E731
    return "\n".join(_ENTITY.sub(decode, line) for line in lines)


@given(st.text())
def test_any_label_is_one_statement_that_mermaid_draws_as_given(label: str) -> None:
    text = diagrams.sequence_diagram([diagrams.Message("Bot", "Graph", label)])

    assert 4 == len(text.splitlines())
    head, _, drawn = text.splitlines()[3].partition(": ")
    assert "    Bot->>Graph" == head
    plain = _ENTITY.sub("", drawn).replace("<br>", "")
    assert not set(';:#%"<>') & set(plain)
    assert ("\n".join(label.splitlines()) or " ") == mermaid_decode(drawn)


def test_sequence_diagram_breaks_lines_and_keeps_participant_order() -> None:
    messages = [
        diagrams.Message("Graph", "Bot", "one\ntwo"),
        diagrams.Message("Bot", "Graph", "three"),
    ]

    assert (
        "sequenceDiagram\n"
        "    title flow\n"
        "    participant Graph\n"
        "    participant Bot\n"
        "    Graph->>Bot: one<br>two\n"
        "    Bot->>Graph: three\n"
    ) == diagrams.sequence_diagram(messages, title="flow")


def test_names_mermaid_would_misread_get_an_alias() -> None:
    messages = [diagrams.Message("Endpoint", "call service", "x")]

    lines = diagrams.sequence_diagram(messages).splitlines()

    assert ["    participant p1 as Endpoint", "    participant p2 as call service"] == lines[1:3]
    assert "    p1->>p2: x" == lines[3]


def test_timings_are_relative_to_the_first_timed_message() -> None:
    messages = [
        diagrams.Message("Bot", "Graph", "POST", at=100.0),
        diagrams.Message("Graph", "Bot", "200 OK", at=100.012),
    ]

    text = diagrams.trace_sequence_diagram(messages)

    assert "    Bot->>Graph: [+0.000s] POST\n    Graph->>Bot: [+0.012s] 200 OK\n" in text


def test_a_trace_sequence_needs_every_time() -> None:
    with pytest.raises(ValueError, match=r"message 1 .* has no time"):
        diagrams.trace_sequence_diagram(
            [diagrams.Message("Bot", "Graph", "a", at=1.0), diagrams.Message("Graph", "Bot", "b")]
        )


def test_message_is_frozen_and_checks_its_input() -> None:
    message = diagrams.Message("Bot", "Graph", "hi")

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.label = "bye"  # type: ignore[misc]
    with pytest.raises(ValueError, match="sender must not be blank"):
        diagrams.Message(" ", "Graph", "hi")
    with pytest.raises(ValueError, match="at must be finite"):
        diagrams.Message("Bot", "Graph", "hi", at=float("nan"))


@pytest.mark.parametrize("number", sorted(spec_examples.examples()))
def test_spec_flow_summarises_each_example(number: int) -> None:
    example = spec_examples.examples()[number]

    flow = diagrams.spec_flow(
        example.request_path, example.request, example.response, example.notifications
    )

    assert [("Bot", "Graph")] + [("Graph", "Bot")] * 3 == [(m.sender, m.receiver) for m in flow]
    post, answer, completed, roster = (m.label for m in flow)
    assert post.startswith("POST /communications/calls/")
    assert f"participants={len(example.request['participants'])} (" in post
    assert answer.startswith("200 OK inviteParticipantsOperation status=Running id=")
    assert completed.startswith("deleted ")
    assert completed.endswith("\nstatus=completed")
    assert roster.endswith(f"\nroster of {len(example.roster['value'][0]['resourceData'])}")


def test_spec_flow_names_what_the_invite_replaces() -> None:
    example = spec_examples.examples()[5]  # move one participant from one meeting to another

    post = diagrams.spec_flow(example.request_path, example.request, example.response, [])[0]

    assert "replacesCallId=a7ebfb2d… participantId=7d501bf1…" in post.label


# --- the command line -----------------------------------------------------------------------


def test_main_writes_the_chosen_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = diagrams.main(["--out", str(tmp_path), "--format", "mermaid", "--format", "dot"])

    assert 0 == code
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        capsys.readouterr().out.replace(str(tmp_path) + "/", "").split()
    )
    assert (tmp_path / "invite.dot").exists()
    assert not (tmp_path / "invite.svg").exists()


def test_main_without_graphviz_writes_the_text_formats_and_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    assert 0 == diagrams.main(["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "skipped SVG and PNG" in err
    assert "apt-get install graphviz" in err
    assert (tmp_path / "invite.mmd").exists()
    assert not (tmp_path / "invite.svg").exists()
    assert 1 == diagrams.main(["--out", str(tmp_path), "--format", "png"])


def test_main_refuses_trace_without_a_loader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == diagrams.main(["--out", str(tmp_path), "--trace", "t.jsonl"])
    assert "--trace" in capsys.readouterr().err


def test_main_draws_each_traced_invite_with_the_loader_it_is_given(tmp_path: Path) -> None:
    def load(path: Path) -> list[diagrams.TracedInvite]:
        assert "run.jsonl" == path.name
        messages = [diagrams.Message("Bot", "Graph", "POST", at=0.0)]
        return [
            diagrams.TracedInvite("one", InviteKind.replace_p2p, REPLACE_STEPS, messages),
            diagrams.TracedInvite("two", InviteKind.invite, []),
        ]

    code = diagrams.main(
        ["--out", str(tmp_path), "--format", "mermaid", "--trace", "run.jsonl"], load_trace=load
    )

    assert 0 == code
    assert ["trace-one-sequence.mmd", "trace-one.mmd", "trace-two.mmd"] == sorted(
        p.name for p in tmp_path.iterdir()
    )


def test_main_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == diagrams.main(["--format", "gif"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_diagrams_package_loads_without_the_fake_service() -> None:
    script = (
        "import sys, callflow.diagrams as d; d.write_diagrams; "
        "print(sorted(m for m in sys.modules if m.startswith('callflow.testing')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert "[]" == done.stdout.strip()
