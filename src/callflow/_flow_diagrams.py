"""Diagrams of workflows, drawn from their declaration, as Mermaid and DOT text.

Theory of operation
-------------------
Nothing here knows a transition: every diagram is read off a :class:`~callflow._flows.Workflow`
(its states, what each rings, their deadlines, and its transitions), the same value the
runtime compiles its table from. So a workflow's diagram cannot disagree with what its runs
do; a test parses the Mermaid and DOT back and compares their edges with the declaration.

The DOT is written with the same helpers, font and ink as the invite machines'
(:mod:`callflow.diagrams._state`), and turned into SVG or PNG by the same
:func:`callflow.diagrams.render`. Edges with the same source and destination are drawn as
one arrow listing its transitions, one per line: ``trigger #invite [condition] / effect``
(``@0`` is participant 0; no ``@`` means any participant). Each state shows what it rings
and its deadline; final states are marked (``--> [*]`` in Mermaid, a double border in DOT).

The built-ins are drawn for :data:`DRAWN_PARTICIPANTS` participants with their default
durations (:func:`builtin_workflows`); ``diagrams/hunt.*`` and ``diagrams/ring_group.*`` are
written by :func:`write_flow_diagrams`. Everything is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Final

from ._flows import FlowState, Workflow, hunt, ring_group
from .diagrams._sequence import mermaid_text
from .diagrams._state import _FONT, _INK, _START_NODE, DiagramFormat, _dot_attrs, _dot_id

__all__ = [
    "DRAWN_PARTICIPANTS",
    "builtin_workflows",
    "flow_diagram",
    "flow_edges",
    "flow_readme",
    "write_flow_diagrams",
]

#: How many participants the committed diagrams of the built-ins are drawn for.
DRAWN_PARTICIPANTS: Final = 3

_SUFFIX: Final = {"mermaid": ".mmd", "dot": ".dot", "svg": ".svg", "png": ".png"}
_FORMATS: Final = tuple(_SUFFIX)
#: (fill, stroke) of each built-in final state; any other final state is grey.
_FINAL_COLOURS: Final = {
    "answered": ("#c8e6c9", "#2e7d32"),
    "nobody_answered": ("#ffcdd2", "#c62828"),
    "cancelled": ("#eceff1", "#546e7a"),
}


def builtin_workflows() -> tuple[Workflow, ...]:
    """Hunt and ring group as drawn in ``diagrams/``: 3 participants, default durations."""
    return (hunt(DRAWN_PARTICIPANTS), ring_group(DRAWN_PARTICIPANTS))


def flow_edges(workflow: Workflow) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The workflow's arrows: ``(source, dest, labels)``, one per pair of states.

    Labels are :attr:`FlowTransition.label`, in the declaration's order; arrows are in
    the order of their source and destination states.
    """
    order = {s.name: n for n, s in enumerate(workflow.states)}
    pairs: dict[tuple[str, str], list[str]] = {}
    for t in sorted(workflow.transitions, key=lambda t: (order[t.source], order[t.dest])):
        pairs.setdefault((t.source, t.dest), []).append(t.label)
    return tuple((s, d, tuple(lines)) for (s, d), lines in pairs.items())


def _describe(state: FlowState) -> str:
    rings = ", ".join(f"@{i}" for i in state.rings)
    what = f"rings {rings}" if rings else ("settles" if state.final else "rings nobody")
    return f"{what}, {state.deadline:g} s"


def _colours(state: FlowState) -> tuple[str, str]:
    return _FINAL_COLOURS.get(state.name, ("#eceff1", _INK))


def _title(workflow: Workflow) -> str:
    return f"{workflow.name} ({workflow.participants} participants)"


def _mermaid(workflow: Workflow) -> str:
    lines = ["---", f"title: {json.dumps(_title(workflow))}", "---", "stateDiagram-v2"]
    lines.append("    direction LR")
    finals = [s for s in workflow.states if s.final]
    for s in finals:
        fill, stroke = _colours(s)
        lines.append(f"    classDef end_{s.name} fill:{fill},stroke:{stroke},stroke-width:3px")
    lines += [f"    {s.name}: {mermaid_text(_describe(s))}" for s in workflow.states]
    lines.append(f"    [*] --> {workflow.initial}")
    for source, dest, labels in flow_edges(workflow):
        label = "<br>".join(mermaid_text(line) for line in labels)
        lines.append(f"    {source} --> {dest}: {label}")
    lines += [f"    {s.name} --> [*]" for s in finals]
    lines += [f"    class {s.name} end_{s.name}" for s in finals]
    return "\n".join(lines) + "\n"


def _dot(workflow: Workflow) -> str:
    graph: dict[str, object] = {"rankdir": "LR", "fontname": _FONT, "pad": 0.3}
    graph |= {"nodesep": 0.5, "ranksep": 0.5, "label": _title(workflow), "labelloc": "t"}
    graph["fontsize"] = 18
    node: dict[str, object] = {"shape": "box", "style": "rounded,filled", "color": _INK}
    node |= {"fillcolor": "#ffffff", "fontname": _FONT, "fontsize": 13, "margin": "0.25,0.12"}
    edge: dict[str, object] = {"color": _INK, "fontcolor": _INK, "fontname": _FONT}
    edge["fontsize"] = 11
    out = [
        f"digraph {_dot_id(workflow.name)} {{",
        f"    graph {_dot_attrs(graph)}",
        f"    node {_dot_attrs(node)}",
        f"    edge {_dot_attrs(edge)}",
        "    // The initial arrow starts at a dot, which is not a state.",
        f"    __start__ {_dot_attrs(_START_NODE)}",
    ]
    for s in workflow.states:
        style: dict[str, object] = {"label": f"{s.name}\n{_describe(s)}"}
        if s.final:
            fill, stroke = _colours(s)
            style |= {"peripheries": 2, "fillcolor": fill, "color": stroke}
        out.append(f"    {_dot_id(s.name)} {_dot_attrs(style)}")
    out.append(f"    __start__ -> {_dot_id(workflow.initial)}")
    for source, dest, labels in flow_edges(workflow):
        attrs = _dot_attrs({"label": "\n".join(labels)})
        out.append(f"    {_dot_id(source)} -> {_dot_id(dest)} {attrs}")
    out.append("}")
    return "\n".join(out) + "\n"


def flow_diagram(workflow: Workflow, *, fmt: DiagramFormat = "mermaid") -> str:
    """The state diagram of a workflow, read off its declaration.

    Args:
        workflow: the declaration to draw (a built-in or your own).
        fmt: ``"mermaid"`` (a ``stateDiagram-v2``) or ``"dot"`` (Graphviz, which
            :func:`callflow.diagrams.render` turns into SVG or PNG).

    Returns:
        The diagram's source text, ending with a newline.

    Raises:
        ValueError: ``fmt`` is neither ``"mermaid"`` nor ``"dot"``.

    """
    if fmt == "mermaid":
        return _mermaid(workflow)
    if fmt == "dot":
        return _dot(workflow)
    raise ValueError(f"unknown diagram format {fmt!r}: expected 'mermaid' or 'dot'")


def flow_readme(workflows: Iterable[Workflow] | None = None, *, svg: bool = True) -> str:
    """A Markdown section showing each workflow's diagram inline, for ``diagrams/README.md``.

    Args:
        workflows: what to show; by default :func:`builtin_workflows`.
        svg: link each Graphviz drawing (``{name}.svg``) too.

    Returns:
        The section, starting with a ``## Workflows`` heading and ending with a newline.

    """
    out = [
        "## Workflows",
        "",
        "Call flows composed of invites, drawn from their declaration (`src/callflow/_flows.py`).",
        "Each state shows the participants it rings (`@0` is the first) and its deadline; an",
        "arrow lists `trigger @participant [condition] / effect` (no `@`: any participant).",
        "",
    ]
    for workflow in builtin_workflows() if workflows is None else workflows:
        name = workflow.name
        out += [f"### {name}", "", "```mermaid", flow_diagram(workflow).rstrip("\n"), "```", ""]
        if svg:
            out += [f"Also as [SVG]({name}.svg), [PNG]({name}.png), [DOT]({name}.dot).", ""]
    return "\n".join(out)


def write_flow_diagrams(
    out_dir: Path,
    *,
    workflows: Iterable[Workflow] | None = None,
    formats: Collection[str] = _FORMATS,
) -> list[Path]:
    """Write each workflow's diagram as ``{name}.mmd``, ``.dot``, ``.svg``, ``.png``.

    Args:
        out_dir: the folder; created if missing. Files of the same names are replaced.
        workflows: what to draw; by default :func:`builtin_workflows`.
        formats: any of ``"mermaid"``, ``"dot"``, ``"svg"``, ``"png"``.

    Returns:
        The files written, in order.

    Raises:
        GraphvizMissing: SVG or PNG was asked for and Graphviz is not installed.
        ValueError: an unknown format.

    """
    unknown = sorted(set(formats) - set(_FORMATS))
    if unknown:
        raise ValueError(f"unknown formats {unknown}: choose from {', '.join(_FORMATS)}")
    from .diagrams import render

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for workflow in builtin_workflows() if workflows is None else workflows:
        dot = flow_diagram(workflow, fmt="dot")
        for fmt in (f for f in _FORMATS if f in formats):
            path = out_dir / f"{workflow.name}{_SUFFIX[fmt]}"
            if fmt == "mermaid":
                path.write_text(flow_diagram(workflow), encoding="utf-8", newline="\n")
            elif fmt == "dot":
                path.write_text(dot, encoding="utf-8", newline="\n")
            else:
                path.write_bytes(render(dot, "svg" if fmt == "svg" else "png"))
            written.append(path)
    return written
