"""State diagrams of the invite machines, and an invite's path drawn on one, as text.

Theory of operation
-------------------
Nothing here knows a transition. Every state diagram is read off the declaration in
:mod:`callflow._core._machine` (``TRANSITIONS``, ``states_of``, ``TERMINAL_STATES``): for each kind
a ``transitions`` :class:`~transitions.extensions.markup.MarkupMachine` (the half of
``GraphMachine`` that describes a machine, without a drawing backend) is built once from that
declaration by :func:`~callflow._core._machine.build_machine`, as the runtime's own machine is,
and its ``markup`` (one record per source, trigger, destination and condition) is the only
input of the two writers below. A diagram therefore cannot disagree with the runtime; a
test parses the generated Mermaid and DOT back and compares their edges with
:data:`callflow._core._machine.TABLES`, which is compiled from the same declaration along
another path.

The text is written here rather than by ``GraphMachine``'s own backends: its Mermaid
backend does not mark final states and joins labels with ``|`` on one line, and its
Graphviz backend needs the optional ``graphviz`` package even to produce DOT *text*. Here
both Mermaid and DOT are plain strings built with no optional dependency; turning DOT into
an image is :func:`callflow.diagrams.render`'s business.

Edges with the same source and destination are drawn as one arrow whose label lists the
triggers, one per line, each with its condition in brackets
(``operation_completed [original_already_gone]``). A trace draws the same diagram and pulls
the transitions it took out of those bundles into arrows of their own, numbered in order.

Everything is deterministic: the same machine and the same steps give byte-identical text.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final, Literal, NamedTuple, Protocol

from transitions.extensions.markup import MarkupMachine

from .._core._machine import (
    TERMINAL_STATES,
    InviteKind,
    InviteState,
    Trigger,
    build_machine,
    states_of,
)
from ._sequence import mermaid_text

__all__ = ["DiagramFormat", "StepLike", "state_diagram", "trace_state_diagram"]

DiagramFormat = Literal["mermaid", "dot"]


class StepLike(Protocol):
    """One step of an invite's history, as :func:`trace_state_diagram` reads it."""

    @property
    def trigger(self) -> Trigger:
        """What moved the invite."""

    @property
    def source(self) -> InviteState:
        """The state before the step."""

    @property
    def dest(self) -> InviteState:
        """The state after the step."""

    @property
    def cause(self) -> str:
        """Why the trigger fired (a notification, a response, a timer)."""

    @property
    def at(self) -> float:
        """When, in seconds on the invite's clock."""

    @property
    def ignored(self) -> bool:
        """True when the trigger changed nothing and so is not part of the path."""


# --- reading the machine ------------------------------------------------------------------


class _Transition(NamedTuple):
    source: InviteState
    trigger: Trigger
    dest: InviteState
    condition: str | None

    @property
    def label(self) -> str:
        return f"{self.trigger} [{self.condition}]" if self.condition else str(self.trigger)


@functools.cache
def _transitions(kind: InviteKind) -> tuple[_Transition, ...]:
    """The kind's transitions, read off a machine built from the declaration."""
    machine = build_machine(kind, MarkupMachine)
    rows: list[_Transition] = []
    for row in machine.markup["transitions"]:
        conditions = [str(c) for c in row.get("conditions", ())]
        if row.get("unless") or len(conditions) > 1:
            raise ValueError(
                f"{kind}: {row['trigger']} from {row['source']}: one condition at most"
            )
        rows.append(
            _Transition(
                InviteState(row["source"]),
                Trigger(row["trigger"]),
                InviteState(row["dest"]),
                conditions[0] if conditions else None,
            )
        )
    order = {state: index for index, state in enumerate(states_of(kind))}
    # Stable sort: rows of one (source, dest) pair keep their order of evaluation.
    return tuple(sorted(rows, key=lambda t: (order[t.source], order[t.dest])))


class _Edge(NamedTuple):
    """One arrow: a source, a destination and the transitions it stands for."""

    source: InviteState
    dest: InviteState
    lines: tuple[str, ...]
    steps: tuple[int, ...] = ()  # the path's step numbers, for an arrow of a trace

    @property
    def taken(self) -> bool:
        return bool(self.steps)


class _Path(NamedTuple):
    edges: tuple[_Edge, ...]
    visited: frozenset[InviteState]
    current: InviteState
    legend: tuple[str, ...]


def _bundle(transitions: Iterable[_Transition]) -> list[_Edge]:
    pairs: dict[tuple[InviteState, InviteState], list[str]] = {}
    for t in transitions:
        pairs.setdefault((t.source, t.dest), []).append(t.label)
    return [_Edge(source, dest, tuple(lines)) for (source, dest), lines in pairs.items()]


def _trace(kind: InviteKind, steps: Iterable[StepLike]) -> _Path:
    """Match each step that was not ignored to its transition; bundle the rest as usual."""
    table = _transitions(kind)
    taken: dict[_Transition, list[int]] = {}
    visited = {InviteState.requested}
    current = InviteState.requested
    legend: list[str] = []
    origin: float | None = None
    for step in steps:
        if step.ignored:
            continue
        key = (InviteState(step.source), Trigger(step.trigger), InviteState(step.dest))
        match = [t for t in table if (t.source, t.trigger, t.dest) == key]
        if not match:
            raise ValueError(
                f"{kind} has no transition {key[1]} from {key[0]} to {key[2]} (step at {step.at})"
            )
        number = len(legend) + 1
        origin = step.at if origin is None else origin
        # A trigger with two rows to one destination cannot be told apart: mark both.
        for transition in match:
            taken.setdefault(transition, []).append(number)
        source, trigger, current = key
        visited.update((source, current))
        cause = " ".join(step.cause.split())
        legend.append(
            f"{number}. {trigger}: {source} -> {current}  +{step.at - origin:.3f}s  {cause}"
        )
    # The plain diagram's order, so that the layout stays put: for each (source, dest)
    # pair, the transitions taken get arrows of their own, the others stay bundled.
    edges: list[_Edge] = []
    for _, group in itertools.groupby(table, key=lambda t: (t.source, t.dest)):
        rows = list(group)
        for t in (t for t in rows if t in taken):
            numbers = ", ".join(map(str, taken[t]))
            edges.append(_Edge(t.source, t.dest, (f"({numbers}) {t.label}",), tuple(taken[t])))
        edges += _bundle(t for t in rows if t not in taken)
    return _Path(tuple(edges), frozenset(visited), current, tuple(legend))


# Colours both writers use: the path in orange, terminal states green, red and grey-blue.
_INK, _FAINT, _PATH = "#37474f", "#b0bec5", "#d84315"
_VISITED_FILL, _CURRENT_FILL = "#ffe0b2", "#ffb74d"
_TERMINAL_COLOURS: Final = {
    InviteState.completed: ("#c8e6c9", "#2e7d32"),
    InviteState.failed: ("#ffcdd2", "#c62828"),
    InviteState.cancelled: ("#cfd8dc", "#455a64"),
}


def _terminal_colours(state: InviteState) -> tuple[str, str]:
    """(fill, stroke) of a terminal state."""
    return _TERMINAL_COLOURS.get(state, ("#eceff1", _INK))


# --- Mermaid -------------------------------------------------------------------------------


def _mermaid_classdef(name: str) -> str:
    if name == "visited":
        return f"fill:{_VISITED_FILL},stroke:{_PATH},stroke-width:2px"
    if name == "current":
        return f"fill:{_CURRENT_FILL},stroke:{_PATH},stroke-width:4px,font-weight:bold"
    fill, stroke = _terminal_colours(InviteState(name.removeprefix("end_")))
    return f"fill:{fill},stroke:{stroke},stroke-width:3px"


def _mermaid_state(
    kind: InviteKind, edges: Sequence[_Edge], classes: Mapping[InviteState, str], title: str
) -> str:
    """``classes`` names each styled state's class: ``end_{state}``, visited or current."""
    # YAML front matter; a JSON string is a YAML string, whatever the title holds.
    lines = ["---", f"title: {json.dumps(title)}", "---", "stateDiagram-v2", "    direction LR"]
    used = dict.fromkeys(classes[s] for s in states_of(kind) if s in classes)
    lines += [f"    classDef {name} {_mermaid_classdef(name)}" for name in used]
    lines.append(f"    [*] --> {InviteState.requested}")
    for edge in edges:
        label = "<br>".join(mermaid_text(line) for line in edge.lines)
        lines.append(f"    {edge.source} --> {edge.dest}: {label}")
    lines += [f"    {state} --> [*]" for state in states_of(kind) if state in TERMINAL_STATES]
    for name in used:
        members = ",".join(str(s) for s in states_of(kind) if classes.get(s) == name)
        lines.append(f"    class {members} {name}")
    return "\n".join(lines) + "\n"


# --- DOT -----------------------------------------------------------------------------------

_FONT: Final = "Helvetica"
_START_NODE: Final = {
    "shape": "circle",
    "style": "filled",
    "fillcolor": _INK,
    "label": "",
    "width": 0.2,
    "fixedsize": "true",
}


def _dot_escape(text: str) -> str:
    """Text for inside a DOT double-quoted string; newlines become centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return "\\n".join(escaped.splitlines())


def _dot_id(name: str) -> str:
    return f'"{_dot_escape(name)}"'


def _dot_attrs(attributes: Mapping[str, object], *, raw: Collection[str] = ()) -> str:
    """``[key="value", ...]``; values named in ``raw`` are already escaped."""
    pairs = (
        f'{key}="{value if key in raw else _dot_escape(str(value))}"'
        for key, value in attributes.items()
    )
    return "[" + ", ".join(pairs) + "]"


def _dot_state(kind: InviteKind, path: _Path | None, title: str) -> str:
    graph: dict[str, object] = {"rankdir": "LR", "fontname": _FONT, "pad": 0.3}
    graph |= {"nodesep": 0.5, "ranksep": 0.4}  # edge labels already space the ranks
    if path is None:
        graph |= {"label": _dot_escape(title), "labelloc": "t", "fontsize": 18}
    else:
        # Title and legend together, under the drawing, one left-justified line each.
        legend = "".join(_dot_escape(line) + r"\l" for line in (title, *path.legend))
        graph |= {"label": legend, "labelloc": "b", "labeljust": "l", "fontsize": 13}
    node: dict[str, object] = {"shape": "box", "style": "rounded,filled", "color": _INK}
    node |= {"fillcolor": "#ffffff", "fontname": _FONT, "fontsize": 13, "margin": "0.25,0.12"}
    edge_style: dict[str, object] = {"color": _INK, "fontcolor": _INK, "fontname": _FONT}
    edge_style["fontsize"] = 11
    out = [
        f"digraph {_dot_id(kind.value)} {{",
        f"    graph {_dot_attrs(graph, raw={'label'})}",
        f"    node {_dot_attrs(node)}",
        f"    edge {_dot_attrs(edge_style)}",
        "    // The initial arrow starts at a dot, which is not a state.",
        f"    __start__ {_dot_attrs(_START_NODE)}",
    ]
    for state in states_of(kind):
        style: dict[str, object] = {}
        if state in TERMINAL_STATES:
            fill, stroke = _terminal_colours(state)
            style |= {"shape": "doublecircle", "fillcolor": fill, "color": stroke, "margin": 0.04}
        if path is not None and state in path.visited:
            style |= {"color": _PATH, "penwidth": 2.5}
            style.setdefault("fillcolor", _VISITED_FILL)
        if path is not None and state is path.current:
            style |= {"penwidth": 5, "fontname": f"{_FONT}-Bold"}
            if state not in TERMINAL_STATES:
                style["fillcolor"] = _CURRENT_FILL
        out.append(f"    {_dot_id(state.value)} {_dot_attrs(style)}".removesuffix(" []"))
    out.append(f"    __start__ -> {_dot_id(InviteState.requested.value)}")
    for edge in _bundle(_transitions(kind)) if path is None else path.edges:
        # A condition gets a line of its own under its trigger: long labels widen every rank.
        lines = (line.replace(" [", "\n[") for line in edge.lines)
        style = {"label": r"\n".join(_dot_escape(line) for line in lines)}
        if edge.taken:
            style |= {"color": _PATH, "fontcolor": _PATH, "penwidth": 3}
        elif path is not None:
            style |= {"color": _FAINT, "fontcolor": _FAINT}
            if edge.source is edge.dest:
                # Below the node, clear of a loop the path took above it.
                style |= {"tailport": "s", "headport": "s"}
        arrow = f"{_dot_id(edge.source.value)} -> {_dot_id(edge.dest.value)}"
        out.append(f"    {arrow} {_dot_attrs(style, raw={'label'})}")
    out.append("}")
    return "\n".join(out) + "\n"


# --- state diagrams ------------------------------------------------------------------------


def state_diagram(kind: InviteKind, *, fmt: DiagramFormat = "mermaid") -> str:
    """The state diagram of one kind of invite, read off its machine.

    Every state and transition of the kind is drawn: ``requested`` is entered from the
    start marker, ``completed`` and ``failed`` are marked terminal, and each arrow is
    labelled with its triggers (and a trigger's condition in brackets).

    Args:
        kind: which machine to draw.
        fmt: ``"mermaid"`` for a ``stateDiagram-v2`` (renders on GitHub) or ``"dot"`` for
            Graphviz, which :func:`render` turns into SVG or PNG.

    Returns:
        The diagram's source text, ending with a newline.

    Raises:
        ValueError: ``fmt`` is neither ``"mermaid"`` nor ``"dot"``.

    """
    kind = InviteKind(kind)
    title = f"InviteKind.{kind.name}"
    if fmt == "mermaid":
        classes = {s: f"end_{s}" for s in states_of(kind) if s in TERMINAL_STATES}
        return _mermaid_state(kind, _bundle(_transitions(kind)), classes, title)
    if fmt == "dot":
        return _dot_state(kind, None, title)
    raise ValueError(f"unknown diagram format {fmt!r}: expected 'mermaid' or 'dot'")


def trace_state_diagram(
    kind: InviteKind, steps: Iterable[StepLike], *, fmt: DiagramFormat = "mermaid"
) -> str:
    """The state diagram of ``kind`` with the path an invite took drawn on it.

    Each transition the steps took gets an arrow of its own, labelled with the numbers of
    the steps that took it (``(1) accepted``); the states visited are filled and the
    current state (where the last step went) stands out. Ignored steps changed nothing and
    are not part of the path. In DOT the path is also coloured and thickened, the rest
    greyed, and a legend lists each step with its time and cause; Mermaid cannot style
    a state diagram's arrows, so there the numbers carry the path.

    Args:
        kind: the invite's kind.
        steps: the invite's history, oldest first (objects shaped like :class:`StepLike`).
        fmt: ``"mermaid"`` or ``"dot"``.

    Returns:
        The diagram's source text, ending with a newline.

    Raises:
        ValueError: a step that was not ignored is not a transition of ``kind``, or
            ``fmt`` is unknown.

    """
    kind = InviteKind(kind)
    path = _trace(kind, steps)
    title = f"InviteKind.{kind.name}, {len(path.legend)} steps, now {path.current}"
    if fmt == "mermaid":
        classes = {s: f"end_{s}" for s in states_of(kind) if s in TERMINAL_STATES}
        classes |= dict.fromkeys(path.visited, "visited")
        classes[path.current] = "current"
        return _mermaid_state(kind, path.edges, classes, title)
    if fmt == "dot":
        return _dot_state(kind, path, title)
    raise ValueError(f"unknown diagram format {fmt!r}: expected 'mermaid' or 'dot'")
