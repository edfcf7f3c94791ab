"""The spec's examples played against the fake service, as message flows for the diagrams."""

from __future__ import annotations

import anyio

from ..diagrams import Message, spec_flow
from ._scenarios import SCENARIOS, run_scenario

__all__ = ["spec_flows"]


def spec_flows() -> dict[str, list[Message]]:
    """Each spec example's message flow, played against the embedded fake service.

    The spec's requests (examples 1 to 5, embedded in :mod:`callflow.testing`) are sent to
    :class:`~callflow.testing.FakeGraph` with the spec's quirks on, on a virtual clock;
    what the fake answered and sent, shaped like the spec's JSON, is drawn with
    :func:`callflow.diagrams.spec_flow`. It includes the teardown notifications the spec's
    text promises but does not print. Deterministic: the same flows every run.

    Returns:
        ``{"example-1": [...], ..., "example-5": [...]}``.

    """
    flows: dict[str, list[Message]] = {}
    for scenario in SCENARIOS:
        if not scenario.name.startswith("example "):
            continue
        result = anyio.run(run_scenario, scenario)
        post = result.requests[0]
        response = next(e["body"] for e in result.events if e["type"] == "response")
        path = f"/communications/calls/{post.call_id}/participants/invite"
        flow = spec_flow(path, post.body, response, [sent.body for sent in result.sent])
        flows[scenario.slug] = flow
    return flows
