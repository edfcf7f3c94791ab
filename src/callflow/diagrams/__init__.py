"""Diagrams of the invite machines, of message flows and of traces.

Theory of operation
-------------------
The drawing is done in two private modules, one idea each, whose public names this module
re-exports:

* :mod:`callflow.diagrams._state` writes each kind's state diagram, and an invite's path
  on it, as Mermaid or DOT text read off the declaration in :mod:`callflow._core._machine`
  (:func:`state_diagram`, :func:`trace_state_diagram`);
* :mod:`callflow.diagrams._sequence` writes message flows as Mermaid sequence diagrams
  (:class:`Message`, :func:`sequence_diagram`, :func:`trace_sequence_diagram`) and turns
  an invite as the spec prints it into a flow (:func:`spec_flow`).

This package never imports :mod:`callflow.testing`: the spec's examples are played into
flows there (:func:`callflow.testing.spec_flows`), and handed to :func:`main` by the
``callflow diagrams`` command and by ``python -m callflow.diagrams``.

What is left here touches the outside: turning DOT into an image, writing the files and
their README, and :func:`main`. Mermaid and DOT are plain strings built
with no optional dependency; only turning DOT into SVG or PNG needs Graphviz (the ``dot``
program and the ``graphviz`` package, loaded lazily), and without it
:class:`GraphvizMissing` says what to install.

Everything is deterministic: the same machine and the same messages give byte-identical
Mermaid, DOT and README text (SVG and PNG depend on the installed Graphviz).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from .._core._machine import TERMINAL_STATES, InviteKind, InviteState
from .._exceptions import CallflowError
from ._sequence import Message, sequence_diagram, spec_flow, trace_sequence_diagram
from ._state import DiagramFormat as DiagramFormat
from ._state import StepLike, state_diagram, trace_state_diagram

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
    "write_diagrams",
    "write_trace",
    "TracedInvite",
    "TraceLoader",
    "main",
]

ImageFormat = Literal["svg", "png"]

#: Every format :func:`write_diagrams` knows, in the order files are written.
FORMATS: Final = ("mermaid", "dot", "svg", "png")
_SUFFIX: Final = {"mermaid": ".mmd", "dot": ".dot", "svg": ".svg", "png": ".png"}
_PNG_DPI: Final = 144


class GraphvizMissing(CallflowError, RuntimeError):
    """SVG or PNG was asked for, but Graphviz (``dot`` or the ``graphviz`` package) is missing.

    Mermaid and DOT text never need Graphviz.
    """


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
        "The invite state machines, drawn from their declaration in `src/callflow/_core/_machine.py`",  # noqa: E501
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


#: Plays the spec's examples into message flows (``callflow.testing.spec_flows``).
FlowPlayer = Callable[[], Mapping[str, Sequence[Message]]]


def main(
    argv: Sequence[str],
    *,
    load_trace: TraceLoader | None = None,
    play_flows: FlowPlayer | None = None,
) -> int:
    """``callflow diagrams [--out DIR] [--format FMT]... [--trace TRACE.jsonl]``.

    Without ``--trace``, writes every state diagram and a README (:func:`write_diagrams`);
    with it, writes each traced invite's path (:func:`write_trace`, files named
    ``trace-{name}``). Each file written is printed on its own line.

    Args:
        argv: the arguments after ``diagrams``.
        load_trace: reads a ``--trace`` file into its invites; ``--trace`` is refused
            without one.
        play_flows: plays the spec's examples into message flows, drawn beside the
            state diagrams (``callflow.testing.spec_flows``: the diagrams never import
            the fake service themselves); without one, only the state diagrams.

    Returns:
        0 on success (without Graphviz and without ``--format``, the Mermaid and DOT
        files are written and the skipped SVG/PNG named on stderr), 1 when an SVG or PNG
        asked for by ``--format`` cannot be drawn without Graphviz, 2 for a usage error.

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
    if args.trace is not None and load_trace is None:
        parser.print_usage(sys.stderr)
        print("callflow diagrams: --trace is not available here", file=sys.stderr)
        return 2

    def write(formats: Sequence[str]) -> list[Path]:
        if args.trace is None:
            flows = play_flows() if play_flows is not None else _NO_FLOWS
            return write_diagrams(args.out, formats=formats, flows=flows)
        assert load_trace is not None
        written = []
        for name, kind, steps, messages in load_trace(args.trace):
            written += write_trace(
                args.out, kind, steps, messages=messages, name=f"trace-{name}", formats=formats
            )
        return written

    try:
        written = write(args.formats or FORMATS)
    except GraphvizMissing as exc:
        text = [f for f in FORMATS if f not in ("svg", "png")]
        if args.formats:  # SVG or PNG asked for by name: that is an error
            hint = "(or use --format mermaid --format dot)"
            print(f"callflow diagrams: {exc} {hint}", file=sys.stderr)
            return 1
        # The default (every format) without Graphviz: write the text formats, say so.
        written = write(text)
        print(f"callflow diagrams: skipped SVG and PNG: {exc}", file=sys.stderr)
    for path in written:
        print(path)
    return 0
