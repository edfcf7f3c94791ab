"""Workflow diagrams: drawn from the declaration, committed under diagrams/, kept fresh."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from callflow import diagrams
from callflow._flow_diagrams import (
    builtin_workflows,
    flow_diagram,
    flow_edges,
    flow_readme,
    write_flow_diagrams,
)
from callflow._flows import Workflow, hunt, ring_group

COMMITTED = Path(__file__).parents[1] / "diagrams"
BUILT_INS = builtin_workflows()
NAMES = [w.name for w in BUILT_INS]


def _declared(workflow: Workflow) -> set[tuple[str, str, str]]:
    return {(t.source, t.dest, t.label) for t in workflow.transitions}


def _mermaid_edges(text: str) -> set[tuple[str, str, str]]:
    edges: set[tuple[str, str, str]] = set()
    for source, dest, labels in re.findall(r"^    (\w+) --> (\w+): (.*)$", text, re.MULTILINE):
        for label in labels.split("<br>"):
            edges.add((source, dest, label.replace("#35;", "#")))
    return edges


def _dot_edges(text: str) -> set[tuple[str, str, str]]:
    edges: set[tuple[str, str, str]] = set()
    for source, dest, labels in re.findall(
        r'^    "(\w+)" -> "(\w+)" \[label="(.*)"\]$', text, re.M
    ):
        edges.update((source, dest, label) for label in labels.split("\\n"))
    return edges


@pytest.mark.parametrize("workflow", BUILT_INS, ids=NAMES)
def test_the_mermaid_diagram_has_exactly_the_declared_transitions(workflow: Workflow) -> None:
    assert _declared(workflow) == _mermaid_edges(flow_diagram(workflow))


@pytest.mark.parametrize("workflow", BUILT_INS, ids=NAMES)
def test_the_dot_diagram_has_exactly_the_declared_transitions(workflow: Workflow) -> None:
    assert _declared(workflow) == _dot_edges(flow_diagram(workflow, fmt="dot"))


@pytest.mark.parametrize("workflow", BUILT_INS, ids=NAMES)
def test_every_state_is_drawn_with_what_it_rings_and_its_deadline(workflow: Workflow) -> None:
    text = flow_diagram(workflow)

    for state in workflow.states:
        assert re.search(rf"^    {state.name}: .*{state.deadline:g} s$", text, re.M), state.name
    finals = {s.name for s in workflow.states if s.final}
    assert finals == set(re.findall(r"^    (\w+) --> \[\*\]$", text, re.M))


def test_a_longer_hunt_draws_a_ringing_state_per_participant() -> None:
    text = flow_diagram(hunt(5, ring_for=12.0))

    assert [f"ringing_{i}" for i in range(5)] == re.findall(r"^    (ringing_\d): rings", text, re.M)
    assert "ringing_4: rings @4, 12 s" in text


def test_edges_are_bundled_per_pair_of_states() -> None:
    edges = flow_edges(ring_group(2))

    pairs = [(s, d) for s, d, _ in edges]
    assert len(set(pairs)) == len(pairs)
    assert ("ringing", "answered", ("completed / win",)) == edges[0]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'svg'"):
        flow_diagram(hunt(2), fmt="svg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown formats \['gif'\]"):
        write_flow_diagrams(Path("unused"), formats=("gif",))


def test_the_committed_workflow_diagrams_are_fresh(tmp_path: Path) -> None:
    write_flow_diagrams(tmp_path, formats=("mermaid", "dot"))

    stale = [
        p.name
        for p in sorted(tmp_path.iterdir())
        if p.read_text(encoding="utf-8") != (COMMITTED / p.name).read_text(encoding="utf-8")
    ]
    assert not stale, (
        f"diagrams/ is stale ({', '.join(stale)}): regenerate with write_flow_diagrams"
    )
    assert {f"{n}{ext}" for n in NAMES for ext in (".svg", ".png")} <= {
        p.name for p in COMMITTED.iterdir()
    }


def test_svg_and_png_render_through_graphviz(tmp_path: Path) -> None:
    assert shutil.which("dot"), "the render tests need Graphviz: apt-get install graphviz"
    written = write_flow_diagrams(tmp_path, formats=("svg", "png"))

    assert [f"{n}{ext}" for n in NAMES for ext in (".svg", ".png")] == [p.name for p in written]
    root = ET.fromstring((tmp_path / "hunt.svg").read_bytes())
    assert root.tag.endswith("svg")
    assert (tmp_path / "ring_group.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert diagrams.render(flow_diagram(hunt(2), fmt="dot"), "svg").startswith(b"<?xml")


def test_the_readme_section_shows_each_diagram_inline_and_links_its_files() -> None:
    section = flow_readme()

    assert section.startswith("## Workflows\n")
    for workflow in BUILT_INS:
        assert f"```mermaid\n{flow_diagram(workflow)}```" in section
        assert f"[SVG]({workflow.name}.svg)" in section
