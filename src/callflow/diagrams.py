"""Diagrams of the invite machines, of message flows and of traces.

Theory of operation
-------------------
Nothing here knows a transition. Every state diagram is read off the declaration in
:mod:`callflow._machine` (``TRANSITIONS``, ``states_of``, ``TERMINAL_STATES``): for each kind
a ``transitions`` :class:`~transitions.extensions.markup.MarkupMachine` (the half of
``GraphMachine`` that describes a machine, without a drawing backend) is built once from that
declaration, and its ``markup`` (one record per source, trigger, destination and
condition) is the only input of the two writers below. A diagram therefore cannot disagree
with the runtime; a test parses the generated Mermaid and DOT back and compares their edges
with :data:`callflow._machine.TABLES`, which is compiled from the same declaration along
another path.

The text is written here rather than by ``GraphMachine``'s own backends: its Mermaid
backend does not mark final states and joins labels with ``|`` on one line, and its
Graphviz backend needs the optional ``graphviz`` package even to produce DOT *text*. Here
both Mermaid and DOT are plain strings built with no optional dependency; only turning DOT
into SVG or PNG needs Graphviz (the ``dot`` program and the ``graphviz`` package, loaded
lazily), and without it :class:`GraphvizMissing` says what to install.

Edges with the same source and destination are drawn as one arrow whose label lists the
triggers, one per line, each with its condition in brackets
(``operation_completed [original_already_gone]``). A trace draws the same diagram and pulls
the transitions it took out of those bundles into arrows of their own, numbered in order.

Mermaid is picky about a few characters in free text (``#`` starts a comment or an entity,
``;`` ends a statement, ``:`` starts a label); :func:`sequence_diagram` writes them as
Mermaid's entity codes (``#35;``, ``#59;``, ``#58;``).

Everything is deterministic: the same machine and the same messages give byte-identical
Mermaid, DOT and README text (SVG and PNG depend on the installed Graphviz).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import re
import shutil
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, Protocol

import attrs
from transitions.extensions.markup import MarkupMachine

from ._exceptions import CallflowError
from ._machine import TERMINAL_STATES, TRANSITIONS, InviteKind, InviteState, Trigger, states_of

__all__ = [
    "GraphvizMissing",
    "StepLike",
    "Message",
    "state_diagram",
    "trace_state_diagram",
    "render",
    "sequence_diagram",
    "trace_sequence_diagram",
    "spec_flow",
    "spec_flows",
    "write_diagrams",
    "write_trace",
    "TracedInvite",
    "TraceLoader",
    "main",
]

DiagramFormat = Literal["mermaid", "dot"]
ImageFormat = Literal["svg", "png"]

#: Every format :func:`write_diagrams` knows, in the order files are written.
FORMATS: Final = ("mermaid", "dot", "svg", "png")
_SUFFIX: Final = {"mermaid": ".mmd", "dot": ".dot", "svg": ".svg", "png": ".png"}
_PNG_DPI: Final = 144


class GraphvizMissing(CallflowError, RuntimeError):
    """SVG or PNG was asked for, but Graphviz (``dot`` or the ``graphviz`` package) is missing.

    Mermaid and DOT text never need Graphviz.
    """


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


def _non_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"Message.{attribute.name} must not be blank")


def _finite(_: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"Message.{attribute.name} must be finite, not {value!r}")


@attrs.frozen
class Message:
    """One arrow of a sequence diagram.

    Attributes:
        sender: who sends it, such as ``"Bot"``.
        receiver: who receives it, such as ``"Graph"``.
        label: what it says; newlines become line breaks.
        at: when it was sent, in seconds; shown relative to the first timed message.
        note: an optional remark drawn over the arrow's two ends.

    """

    sender: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    receiver: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    label: str = attrs.field(validator=attrs.validators.instance_of(str))
    at: float | None = attrs.field(default=None, validator=_finite)
    note: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )


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
    machine = MarkupMachine(
        model=None,
        states=[state.value for state in states_of(kind)],
        transitions=[dict(row) for row in TRANSITIONS[kind]],
        initial=InviteState.requested.value,
        auto_transitions=False,
        name=kind.value,
    )
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


# Colours both writers use: the path in orange, terminal states green and red.
_INK, _FAINT, _PATH = "#37474f", "#b0bec5", "#d84315"
_VISITED_FILL, _CURRENT_FILL = "#ffe0b2", "#ffb74d"
_TERMINAL_COLOURS: Final = {
    InviteState.completed: ("#c8e6c9", "#2e7d32"),
    InviteState.failed: ("#ffcdd2", "#c62828"),
}


def _terminal_colours(state: InviteState) -> tuple[str, str]:
    """(fill, stroke) of a terminal state."""
    return _TERMINAL_COLOURS.get(state, ("#eceff1", _INK))


# --- Mermaid -------------------------------------------------------------------------------

_MERMAID_ENTITIES: Final = {
    "#": "#35;",
    ";": "#59;",
    ":": "#58;",
    "%": "#37;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
}


def _mermaid_text(text: str) -> str:
    """Free text as Mermaid reads it: entity codes for its syntax, ``<br>`` for newlines."""
    escaped = "".join(_MERMAID_ENTITIES.get(char, char) for char in text)
    return "<br>".join(escaped.splitlines())


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
        label = "<br>".join(_mermaid_text(line) for line in edge.lines)
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


# --- rendering -----------------------------------------------------------------------------


def _graphviz() -> Any:
    """The ``graphviz`` package, once it and ``dot`` are known to be installed."""
    try:
        import graphviz
    except ImportError:
        raise GraphvizMissing(
            "rendering SVG/PNG needs the graphviz Python package: pip install 'callflow[diagrams]'"
        ) from None
    if shutil.which("dot") is None:
        raise GraphvizMissing(
            "rendering SVG/PNG needs the Graphviz `dot` program on PATH: "
            "apt-get install graphviz (or brew install graphviz)"
        )
    return graphviz


def render(dot: str, fmt: ImageFormat) -> bytes:
    """Draw DOT text (from :func:`state_diagram` or :func:`trace_state_diagram`) as an image.

    Args:
        dot: the DOT source.
        fmt: ``"svg"`` or ``"png"`` (PNG at 144 dpi, for screens).

    Returns:
        The image file's bytes.

    Raises:
        GraphvizMissing: the ``dot`` program or the ``graphviz`` package is not installed.
        ValueError: ``fmt`` is neither ``"svg"`` nor ``"png"``.

    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"unknown image format {fmt!r}: expected 'svg' or 'png'")
    graphviz = _graphviz()
    if fmt == "png":
        # Resolution only for the bitmap: in SVG, dpi would scale the whole drawing.
        closing = dot.rindex("}")
        dot = f"{dot[:closing]}    graph [dpi={_PNG_DPI}]\n{dot[closing:]}"
    try:
        image: bytes = graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(
            "rendering SVG/PNG needs the Graphviz `dot` program: apt-get install graphviz"
        ) from None
    return image


# --- sequence diagrams ---------------------------------------------------------------------

# Mermaid's sequence lexer matches keywords before names, so a participant called
# "Endpoint" would be read as `end` + "point": such names get a plain alias.
_KEYWORDS: Final = re.compile(
    r"(participant|actor|as|end|loop|rect|opt|alt|else|par|and|critical|option|break|left"
    r"|right|links?|properties|details|over|note|activate|deactivate|title|acc|autonumber"
    r"|off|box|create|destroy|sequencediagram)",
    re.IGNORECASE,
)
_PLAIN_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _participant_ids(messages: Sequence[Message]) -> dict[str, str]:
    names = dict.fromkeys(name for m in messages for name in (m.sender, m.receiver))
    ids: dict[str, str] = {}
    for number, name in enumerate(names, start=1):
        plain = _PLAIN_NAME.fullmatch(name) and not _KEYWORDS.match(name)
        ids[name] = name if plain else f"p{number}"
    return ids


def sequence_diagram(messages: Sequence[Message], *, title: str | None = None) -> str:
    """A Mermaid ``sequenceDiagram`` of messages, in the order given.

    Participants appear in the order they first send or receive. A message with ``at``
    shows its time relative to the first timed message (``[+0.012s]``); a message with a
    ``note`` gets a note over its sender and receiver. Characters Mermaid would read as
    syntax (``#``, ``;``, ``:``, ``%``, quotes, angle brackets) are written as entity
    codes, and newlines become line breaks, so any text is drawn as given.

    Args:
        messages: the arrows, oldest first.
        title: an optional title above the diagram.

    Returns:
        The diagram's source text, ending with a newline.

    """
    ids = _participant_ids(messages)
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {_mermaid_text(title)}")
    for name, ident in ids.items():
        alias = "" if name == ident else f" as {_mermaid_text(name)}"
        lines.append(f"    participant {ident}{alias}")
    origin = next((m.at for m in messages if m.at is not None), None)
    for message in messages:
        label = message.label
        if message.at is not None and origin is not None:
            label = f"[+{message.at - origin:.3f}s] {label}"
        sender, receiver = ids[message.sender], ids[message.receiver]
        lines.append(f"    {sender}->>{receiver}: {_mermaid_text(label) or ' '}")
        if message.note:
            over = sender if sender == receiver else f"{sender},{receiver}"
            lines.append(f"    Note over {over}: {_mermaid_text(message.note)}")
    return "\n".join(lines) + "\n"


def trace_sequence_diagram(messages: Sequence[Message], *, title: str | None = None) -> str:
    """The sequence diagram of a recorded exchange, every arrow with its time.

    Args:
        messages: the recorded messages, oldest first; each must have ``at``.
        title: an optional title above the diagram.

    Returns:
        The diagram's source text, as :func:`sequence_diagram` writes it.

    Raises:
        ValueError: a message has no ``at``.

    """
    for index, message in enumerate(messages):
        if message.at is None:
            raise ValueError(f"message {index} ({message.label!r}) has no time: set Message.at")
    return sequence_diagram(messages, title=title)


_GUID: Final = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _short(text: object) -> str:
    """Text with each GUID cut to its first eight digits, to keep arrows readable."""
    return _GUID.sub(r"\1…", str(text))


def _get(mapping: object, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _identity(identity: object) -> str:
    """``user 7e1b4346…`` or ``phone +12345678901``: the first identity an identitySet holds."""
    if isinstance(identity, Mapping):
        for key, value in identity.items():
            if isinstance(value, Mapping) and _get(value, "id"):
                return f"{key} {_short(value['id'])}"
    return "?"


def _invite_summary(request: Mapping[str, Any]) -> str:
    participants = _get(request, "participants")
    participants = participants if isinstance(participants, list) else []
    who = [_identity(_get(p, "identity")) for p in participants]
    parts = [f"participants={len(participants)}" + (f" ({', '.join(who)})" if who else "")]
    for key in ("replacesCallId", "participantId"):
        values = dict.fromkeys(_get(p, key) for p in participants) if participants else {}
        parts += [f"{key}={_short(v)}" for v in values if v is not None]
    return " ".join(parts)


def _notification_summary(notification: Mapping[str, Any]) -> str:
    data = _get(notification, "resourceData")
    if isinstance(data, list):
        return f"roster of {len(data)}"
    parts = [f"{key}={_get(data, key)}" for key in ("status", "state") if _get(data, key)]
    return " ".join(parts)


def spec_flow(
    request_path: str,
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    notifications: Sequence[Mapping[str, Any]],
) -> list[Message]:
    """The messages of one invite as the spec shows it: POST, answer, notifications.

    Reads only the mappings given (Graph's JSON as printed in the spec), so the answer is
    shown as ``200 OK`` like every answer in the spec; GUIDs are cut to eight digits so
    the arrows stay readable.

    Args:
        request_path: the POST's path, such as ``/communications/calls/{id}/participants/invite``.
        request: the POST's JSON body.
        response: the answer's JSON body (an ``inviteParticipantsOperation``).
        notifications: ``commsNotifications`` bodies, in order of delivery.

    Returns:
        ``Bot -> Graph`` for the POST, ``Graph -> Bot`` for the answer and for each
        notification in each body.

    """
    operation = str(_get(response, "@odata.type") or "operation").rpartition(".")[2]
    answer = (
        f"200 OK {operation} status={_get(response, 'status')} id={_short(_get(response, 'id'))}"
    )
    messages = [
        Message("Bot", "Graph", f"POST {_short(request_path)}\n{_invite_summary(request)}"),
        Message("Graph", "Bot", answer),
    ]
    for body in notifications:
        values = _get(body, "value")
        for item in values if isinstance(values, list) else [body]:
            head = f"{_get(item, 'changeType')} {_short(_get(item, 'resource'))}"
            summary = _notification_summary(item)
            messages.append(Message("Graph", "Bot", f"{head}\n{summary}" if summary else head))
    return messages


def spec_flows() -> dict[str, list[Message]]:
    """Each spec example's message flow, played against the embedded fake service.

    The spec's requests (examples 1 to 5, embedded in :mod:`callflow.testing`) are sent to
    :class:`~callflow.testing.FakeGraph` with the spec's quirks on, on a virtual clock;
    what the fake answered and sent, shaped like the spec's JSON, is drawn with
    :func:`spec_flow`. It includes the teardown notifications the spec's text promises
    but does not print. Deterministic: the same flows every run.

    Returns:
        ``{"example-1": [...], ..., "example-5": [...]}``.

    """
    import anyio

    from .testing import SCENARIOS, run_scenario

    flows: dict[str, list[Message]] = {}
    for scenario in SCENARIOS:
        if not scenario.name.startswith("example "):
            continue
        result = anyio.run(run_scenario, scenario)
        post = result.requests[0]
        response = next(e["body"] for e in result.events if e["type"] == "response")
        path = f"/communications/calls/{post.call_id}/participants/invite"
        flow = spec_flow(path, post.body, response, [sent.body for sent in result.sent])
        flows[scenario.name.replace(" ", "-")] = flow
    return flows


# --- files ---------------------------------------------------------------------------------

_NO_FLOWS: Final[Mapping[str, Sequence[Message]]] = MappingProxyType({})
_FLOW_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_formats(formats: Collection[str]) -> list[str]:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown formats {unknown}: choose from {', '.join(FORMATS)}")
    return [fmt for fmt in FORMATS if fmt in formats]


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="\n")
    return path


def _diagram_files(
    out_dir: Path, stem: str, formats: Sequence[str], mermaid: Callable[[], str], dot: str
) -> list[Path]:
    written = []
    for fmt in formats:
        content: str | bytes
        if fmt == "mermaid":
            content = mermaid()
        elif fmt == "dot":
            content = dot
        else:
            content = render(dot, "svg" if fmt == "svg" else "png")
        written.append(_write(out_dir / f"{stem}{_SUFFIX[fmt]}", content))
    return written


def _readme(formats: Sequence[str], flows: Mapping[str, Sequence[Message]]) -> str:
    terminal = " and ".join(f"`{s}`" for s in InviteState if s in TERMINAL_STATES)
    out = [
        "# callflow diagrams",
        "",
        "The invite state machines, drawn from their declaration in `src/callflow/_machine.py`",
        "by `callflow.diagrams.write_diagrams`. Do not edit these files: regenerate them",
        "(`python -m callflow.diagrams --out diagrams`). A test fails when they no longer",
        "match the code.",
        "",
        f"Every invite starts in `{InviteState.requested}`; {terminal} are terminal (`--> [*]`",
        "in Mermaid, double circles in Graphviz). Each arrow lists the triggers that take it;",
        "`trigger [condition]` is taken only when the condition holds, and where a trigger has",
        "several rows from one state the first whose condition holds wins.",
        "",
    ]
    for kind in InviteKind:
        out += [f"## {kind}", "", "```mermaid", state_diagram(kind).rstrip("\n"), "```", ""]
        if "svg" in formats:
            out += ["<details><summary>Graphviz drawing</summary>", ""]
            out += [f"![{kind} state diagram]({kind}.svg)", "", "</details>", ""]
        links = [f"[{fmt.upper()}]({kind}{_SUFFIX[fmt]})" for fmt in formats if fmt != "mermaid"]
        if links:
            out += [f"Also as {', '.join(links)}.", ""]
    if flows:
        out += ["## Flows", ""]
    for name, messages in flows.items():
        out += [f"### {name}", "", "```mermaid", _flow(name, messages).rstrip("\n"), "```", ""]
    return "\n".join(out)


def _flow(name: str, messages: Sequence[Message]) -> str:
    return sequence_diagram(messages, title=name)


def write_diagrams(
    out_dir: Path,
    *,
    formats: Collection[str] = FORMATS,
    flows: Mapping[str, Sequence[Message]] = _NO_FLOWS,
) -> list[Path]:
    """Write every kind's state diagram, the given flows and a README into a folder.

    Writes ``{kind}.mmd``, ``{kind}.dot``, ``{kind}.svg`` and ``{kind}.png`` (those of
    ``formats``) for each kind, ``flow-{name}.mmd`` for each flow, and ``README.md`` showing
    every diagram inline as Mermaid, with links to the other files. The same input gives
    byte-identical Mermaid, DOT and README files.

    Args:
        out_dir: the folder; created if missing. Files of the same names are replaced.
        formats: any of ``"mermaid"``, ``"dot"``, ``"svg"``, ``"png"``.
        flows: sequence diagrams to add, by name (letters, digits, ``.``, ``_``, ``-``).

    Returns:
        The files written, in order.

    Raises:
        GraphvizMissing: SVG or PNG was asked for and Graphviz is not installed (checked
            before anything is written).
        ValueError: an unknown format or a flow name that is not a plain file name.

    """
    chosen = _check_formats(formats)
    bad = [name for name in flows if not _FLOW_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"flow names must be plain file names, not {bad}")
    if {"svg", "png"} & set(chosen):
        _graphviz()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind in InviteKind:
        mermaid = functools.partial(state_diagram, kind, fmt="mermaid")
        written += _diagram_files(
            out_dir, kind.value, chosen, mermaid, state_diagram(kind, fmt="dot")
        )
    for name, messages in flows.items():
        written.append(_write(out_dir / f"flow-{name}.mmd", _flow(name, messages)))
    written.append(_write(out_dir / "README.md", _readme(chosen, flows)))
    return written


def write_trace(
    out_dir: Path,
    kind: InviteKind,
    steps: Sequence[StepLike],
    *,
    messages: Sequence[Message] = (),
    name: str = "trace",
    formats: Collection[str] = FORMATS,
) -> list[Path]:
    """Write one invite's trace: its path on the state diagram, and its messages if any.

    Writes ``{name}.mmd``, ``{name}.dot``, ``{name}.svg``, ``{name}.png`` (those of
    ``formats``) from :func:`trace_state_diagram`, and ``{name}-sequence.mmd`` from
    :func:`trace_sequence_diagram` when ``messages`` is not empty.

    Args:
        out_dir: the folder; created if missing.
        kind: the invite's kind.
        steps: the invite's history, oldest first.
        messages: the messages exchanged, each with its time.
        name: the files' stem (letters, digits, ``.``, ``_``, ``-``).
        formats: any of ``"mermaid"``, ``"dot"``, ``"svg"``, ``"png"``.

    Returns:
        The files written, in order.

    Raises:
        GraphvizMissing: SVG or PNG was asked for and Graphviz is not installed.
        ValueError: an unknown format, a bad name, a step that is not a transition of
            ``kind``, or a message without a time.

    """
    chosen = _check_formats(formats)
    if not _FLOW_NAME.fullmatch(name):
        raise ValueError(f"trace name must be a plain file name, not {name!r}")
    dot = trace_state_diagram(kind, steps, fmt="dot")
    sequence = trace_sequence_diagram(messages, title=name) if messages else None
    if {"svg", "png"} & set(chosen):
        _graphviz()
    out_dir.mkdir(parents=True, exist_ok=True)
    mermaid = functools.partial(trace_state_diagram, kind, steps, fmt="mermaid")
    written = _diagram_files(out_dir, name, chosen, mermaid, dot)
    if sequence is not None:
        written.append(_write(out_dir / f"{name}-sequence.mmd", sequence))
    return written


class TracedInvite(NamedTuple):
    """One invite of a trace file, as a :data:`TraceLoader` returns it."""

    name: str  #: the files' stem after ``trace-``, such as the clientContext
    kind: InviteKind
    steps: Sequence[StepLike]
    messages: Sequence[Message] = ()


#: Reads a trace file (JSON lines) into its invites.
TraceLoader = Callable[[Path], Iterable[TracedInvite]]


def main(argv: Sequence[str], *, load_trace: TraceLoader | None = None) -> int:
    """``callflow diagrams [--out DIR] [--format FMT]... [--trace TRACE.jsonl]``.

    Without ``--trace``, writes every state diagram and a README (:func:`write_diagrams`);
    with it, writes each traced invite's path (:func:`write_trace`, files named
    ``trace-{name}``). Each file written is printed on its own line.

    Args:
        argv: the arguments after ``diagrams``.
        load_trace: reads a ``--trace`` file into its invites; ``--trace`` is refused
            without one.

    Returns:
        0 on success, 1 when Graphviz is needed and missing, 2 for a usage error.

    """
    parser = argparse.ArgumentParser(
        prog="callflow diagrams", description="Draw the invite state machines."
    )
    parser.add_argument("--out", type=Path, default=Path("diagrams"), help="folder to write")
    parser.add_argument(
        "--format",
        action="append",
        choices=FORMATS,
        dest="formats",
        help="repeat for several (default: all)",
    )
    parser.add_argument("--trace", type=Path, help="draw this invite trace instead")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    formats = args.formats or FORMATS
    try:
        if args.trace is None:
            written = write_diagrams(args.out, formats=formats, flows=spec_flows())
        elif load_trace is None:
            parser.print_usage(sys.stderr)
            print("callflow diagrams: --trace is not available here", file=sys.stderr)
            return 2
        else:
            written = []
            for name, kind, steps, messages in load_trace(args.trace):
                written += write_trace(
                    args.out, kind, steps, messages=messages, name=f"trace-{name}", formats=formats
                )
    except GraphvizMissing as exc:
        print(f"callflow diagrams: {exc} (or use --format mermaid --format dot)", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
