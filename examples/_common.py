"""What the example scripts share: which Graph to talk to, and how to show an invite's path.

Every script runs against the embedded fake Graph service unless the environment names
an Azure AD application (examples/README.md lists the variables):

* **Fake** (the default): :class:`callflow.testing.FakeGraph` answers the POST in-process
  and sends the spec's notifications to the Client, on the real clock. Participants
  answer after :data:`ACCEPT_AFTER` seconds, so a script finishes in under a second and
  prints each state the invite enters, with the time since the POST.
* **Real**: ``CALLFLOW_TENANT_ID``, ``CALLFLOW_CLIENT_ID`` and ``CALLFLOW_CLIENT_SECRET``
  are set. The script sends the invite to graph.microsoft.com and prints the answer. The
  rest of the story goes, as notifications, to the callback URL of the call invited into,
  which belongs to the bot that created or answered that call, not to this script: run
  webhook_bot.py as that bot to follow invites to the end.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import anyio
import anyio.to_thread
import attrs

import callflow
from callflow.testing import SCENARIOS, Accepts, FakeGraph

__all__ = [
    "ACCEPT_AFTER",
    "CREDENTIAL_VARIABLES",
    "VARIABLES",
    "ConfigError",
    "Credentials",
    "Graph",
    "GraphToken",
    "require",
    "Timeline",
    "connect",
    "env",
    "run",
]

#: Seconds the fake service's participants ring before they answer.
ACCEPT_AFTER: Final = 0.3

#: Setting these switches the scripts from the fake Graph to the real one.
CREDENTIAL_VARIABLES: Final = (
    "CALLFLOW_TENANT_ID",
    "CALLFLOW_CLIENT_ID",
    "CALLFLOW_CLIENT_SECRET",
)

#: Every variable the examples read (the tests unset them all).
VARIABLES: Final = (
    *CREDENTIAL_VARIABLES,
    "CALLFLOW_CALL_ID",
    "CALLFLOW_USER_ID",
    "CALLFLOW_PHONE_NUMBER",
    "CALLFLOW_REPLACES_CALL_ID",
    "CALLFLOW_PARTICIPANT_ID",
    "CALLFLOW_APP_ID",
    "CALLFLOW_CALLBACK_URL",
)


class ConfigError(Exception):
    """The environment asks for the real Graph but does not say enough to reach it."""


def env(name: str) -> str:
    """A variable the real-Graph mode needs.

    Raises:
        ConfigError: it is unset or empty.

    """
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (see examples/README.md)")
    return value


@attrs.frozen
class Credentials:
    """An Azure AD application's client credentials, from the environment."""

    tenant_id: str
    client_id: str
    client_secret: str = attrs.field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials | None:
        """The credentials, or None when none of their variables is set (fake mode).

        Raises:
            ConfigError: some are set and some are not.

        """
        values = [os.environ.get(name, "").strip() for name in CREDENTIAL_VARIABLES]
        if not any(values):
            return None
        missing = [
            name for name, value in zip(CREDENTIAL_VARIABLES, values, strict=True) if not value
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: the real Graph needs all of "
                f"{', '.join(CREDENTIAL_VARIABLES)} (unset them all for the fake one)"
            )
        return cls(*values)


def require(module: str, extra: str) -> Any:
    """Import an optional dependency of the real-Graph mode, or say what to install.

    Raises:
        ConfigError: it is not installed.

    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"the real Graph needs {module}: pip install 'callflow[{extra}]'"
        ) from None


class GraphToken:
    """Graph bearer tokens for an application, from azure-identity's ClientSecretCredential.

    A callflow token source: the Client calls it before each request.

    Raises:
        ConfigError: azure-identity is not installed.

    """

    def __init__(self, credentials: Credentials) -> None:
        identity = require("azure.identity", "azure")  # the fake needs no token
        self._credential = identity.ClientSecretCredential(
            credentials.tenant_id, credentials.client_id, credentials.client_secret
        )

    async def __call__(self) -> str:
        # The credential caches its token, but a refresh is a blocking HTTP request:
        # run it in a thread so the event loop (and the webhook) keeps going meanwhile.
        token = await anyio.to_thread.run_sync(self._credential.get_token, callflow.GRAPH_SCOPE)
        return str(token.token)

    def close(self) -> None:
        """Close the credential's HTTP session."""
        self._credential.close()


class Timeline:
    """Prints what happens to an invite, each line with the seconds since the POST."""

    def __init__(self, clock: callflow.Clock) -> None:
        self._clock = clock
        self.started = clock.now()

    def start(self) -> None:
        """Count from now."""
        self.started = self._clock.now()

    def show(self, what: str, detail: str, at: float | None = None) -> None:
        """Print one line: the time, what happened, and why."""
        at = self._clock.now() if at is None else at
        print(f"  +{at - self.started:.3f}s  {what:<22} {detail}")

    def on_roster(
        self, notification: callflow.CommsNotification, _: tuple[callflow.InviteHandle, ...]
    ) -> None:
        """The Client's on_roster callback: the spec's "roster updated" notification."""
        roster = notification.participants
        removed = sum(p.is_removed for p in roster)
        text = f"call {notification.call_id}: {len(roster)} participant(s)"
        self.show("roster update", text + (f", {removed} removed" if removed else ""))

    def on_unmatched(self, delivery: callflow.Delivery) -> None:
        """The Client's on_unmatched callback: a notification no invite took."""
        self.show(f"{delivery.outcome} notification", delivery.notification.describe())


@attrs.frozen
class Graph:
    """Where an example sends its invite: a Client, the call, and the fake service if any.

    Attributes:
        client: the open :class:`callflow.Client`.
        call_id: the call to invite into (the spec's, or ``CALLFLOW_CALL_ID``).
        fake: the fake service, or None against the real Graph.
        timeline: prints the invite's path.

    """

    client: callflow.Client
    call_id: str
    fake: FakeGraph | None
    timeline: Timeline

    @property
    def real(self) -> bool:
        """True against the real Graph."""
        return self.fake is None

    async def invite(
        self,
        participants: Sequence[Mapping[str, Any]],
        *,
        client_context: str | None = None,
    ) -> callflow.InviteHandle:
        """Send the invite; return once the POST is answered.

        Raises:
            callflow.InviteError: callflow refused the request; nothing was sent.

        """
        self.timeline.start()
        return await self.client.invite(self.call_id, participants, client_context=client_context)

    async def follow(self, handle: callflow.InviteHandle, expect: callflow.InviteState) -> bool:
        """Print each state the invite enters, until it finishes; True if it ended as expected.

        Against the real Graph only the POST's answer arrives here (see the module
        docstring), so this prints it and says where the rest goes; True unless it failed.
        """
        timeline = self.timeline
        print(f"\n{handle.invite.kind} {handle.client_context}, into call {self.call_id}:")
        path = f"/communications/calls/{self.call_id}/participants/invite"
        timeline.show("requested", f"POST {path}", at=timeline.started)
        if self.fake is None:
            for step in handle.history:  # the POST's answer, all that comes here
                if not step.ignored:
                    timeline.show(str(step.dest), step.cause, at=step.at)
        else:
            async for step in handle:  # each step as it happens, until the invite finishes
                timeline.show(str(step.dest), step.cause, at=step.at)
            # Let the notifications that follow the end (a teardown's last word) arrive.
            await self.fake.drain()
        if handle.failure is not None:
            print(f"failed: {handle.failure.describe()}")
        if self.real:
            if handle.state is callflow.InviteState.failed:
                return False
            print(
                f"\n{handle.state} after the POST's answer. What happens next is sent as "
                "notifications to the callback URL of the call invited into, which belongs to "
                "the bot that created or answered that call, not to this script. Run "
                "examples/webhook_bot.py as that bot to follow invites to the end."
            )
            return True
        as_expected = handle.state is expect
        print(f"{handle.state}, {'as expected' if as_expected else f'NOT {expect} as expected'}")
        return as_expected


@contextlib.asynccontextmanager
async def connect(example: int) -> AsyncIterator[Graph]:
    """Open a Client against the fake Graph, playing the spec's example, or the real one.

    Args:
        example: the spec's example number: the fake uses its call, operation id and
            quirks, so its notifications look exactly like the example's.

    Raises:
        ConfigError: the real Graph is asked for, but a variable is missing.

    """
    credentials = Credentials.from_env()
    clock = callflow.SystemClock()
    timeline = Timeline(clock)
    if credentials is None:
        scenario = next(s for s in SCENARIOS if s.example == example)
        print(
            f"Graph: the embedded fake service; participants answer after {ACCEPT_AFTER} s.\n"
            "       (CALLFLOW_TENANT_ID, CALLFLOW_CLIENT_ID and CALLFLOW_CLIENT_SECRET switch "
            "to the real one.)"
        )
        async with (
            FakeGraph(
                clock=clock,
                quirks=scenario.quirks,
                operation_ids=[scenario.operation_id] if scenario.operation_id else [],
                default_answer=Accepts(after=ACCEPT_AFTER),
            ) as fake,
            fake.http_client() as http,
            callflow.Client(
                http,
                clock=clock,
                on_roster=timeline.on_roster,
                on_unmatched=timeline.on_unmatched,
            ) as client,
        ):
            fake.deliver_to(client)  # the fake's notifications go straight to the Client
            yield Graph(client, scenario.call_id, fake, timeline)
        return
    call_id = env("CALLFLOW_CALL_ID")
    token = GraphToken(credentials)
    print(f"Graph: {callflow.GRAPH_BASE_URL}, as application {credentials.client_id}")
    try:
        async with callflow.Client(token=token, clock=clock) as client:
            yield Graph(client, call_id, None, timeline)
    finally:
        token.close()


def run(
    argv: list[str] | None, doc: str | None, example: int, play: Callable[[Graph], Awaitable[bool]]
) -> int:
    """A script's ``main``: parse the (few) options, play the example, give the exit status.

    Returns:
        0 when the invite ended as expected, 1 when not, 2 when the environment is wrong.

    """
    title, _, _ = (doc or "").strip().partition("\n")
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show callflow's log")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
        logging.getLogger("callflow").setLevel(logging.DEBUG)

    async def main() -> bool:
        print(title)
        async with connect(example) as graph:
            return await play(graph)

    try:
        return 0 if anyio.run(main) else 1
    except ConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
