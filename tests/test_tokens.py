"""Graph bearer tokens: credentials cached until they expire, one refresh at a time, a
sync credential off the event loop, and the national clouds' URLs and scopes together."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import callflow
from callflow import InviteState
from callflow._tokens import CLOUDS, TokenCache
from callflow.testing import FakeGraph, VirtualClock

pytestmark = pytest.mark.anyio

CALL = "cf-call"
PSTN = [{"identity": {"phone": {"id": "+12345678901"}}}]


class AccessToken:
    """azure-identity's AccessToken: ``token`` and ``expires_on`` (epoch seconds)."""

    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = expires_on


class WallClock:
    """The wall clock a TokenCache compares ``expires_on`` with, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class AsyncCredential:
    """An ``azure.identity.aio`` credential whose tokens live an hour."""

    def __init__(self, wall: WallClock) -> None:
        self.wall = wall
        self.calls: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str) -> AccessToken:
        self.calls.append(scopes)
        for _ in range(5):  # a refresh takes a while: others must wait, not ask too
            await anyio.lowlevel.checkpoint()
        return AccessToken(f"token-{len(self.calls)}", self.wall.now + 3600)


class BlockingCredential:
    """A sync credential whose refresh blocks its thread until told to finish."""

    def __init__(self, wall: WallClock) -> None:
        self.wall = wall
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def get_token(self, *scopes: str) -> AccessToken:
        self.threads.append(threading.current_thread())
        if not self.release.wait(timeout=10):
            raise TimeoutError("never released")
        return AccessToken("sync-token", self.wall.now + 3600)


@asynccontextmanager
async def client_on(
    fake: FakeGraph, clock: VirtualClock, sent: list[httpx.Request], **options: Any
) -> AsyncIterator[callflow.Client]:
    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    async with (
        fake.http_client(event_hooks={"request": [keep]}) as http,
        callflow.Client(http, clock=clock, **options) as client,
    ):
        fake.deliver_to(client)
        yield client
        fake.deliver_to(None)


async def test_one_get_token_serves_many_concurrent_invites(virtual_clock: VirtualClock) -> None:
    wall = WallClock()
    credential = AsyncCredential(wall)
    sent: list[httpx.Request] = []
    async with (
        FakeGraph(clock=virtual_clock) as fake,
        client_on(fake, virtual_clock, sent, token=credential) as client,
    ):
        client._tokens._wall_clock = wall
        handles: list[callflow.InviteHandle] = []

        async def invite(n: int) -> None:
            handles.append(await client.invite(CALL, PSTN, client_context=f"ctx-{n}"))

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(invite, n)
        for handle in handles:
            await handle.wait()
    assert [(callflow.GRAPH_SCOPE,)] == credential.calls
    assert 20 == len(sent)
    assert {"Bearer token-1"} == {r.headers["Authorization"] for r in sent}
    assert all(InviteState.completed == h.state for h in handles)


async def test_the_token_is_refreshed_once_it_is_within_the_margin_of_expiry() -> None:
    wall = WallClock()
    credential = AsyncCredential(wall)
    cache = TokenCache(credential, margin=300, wall_clock=wall)
    assert "token-1" == await cache.get()
    wall.now += 3600 - 301  # still more than the margin left
    assert "token-1" == await cache.get()
    wall.now += 2  # now within five minutes of expiry
    assert "token-2" == await cache.get()
    assert "token-2" == await cache.get()
    assert 2 == len(credential.calls)


async def test_a_sync_credential_is_asked_in_a_worker_thread_and_the_loop_keeps_running() -> None:
    wall = WallClock()
    credential = BlockingCredential(wall)
    cache = TokenCache(credential, wall_clock=wall)
    ticks = 0
    got: list[str | None] = []

    async def fetch() -> None:
        got.append(await cache.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch)
        tg.start_soon(fetch)
        # While the credential blocks its thread, the loop goes on ticking.
        deadline = time.monotonic() + 5
        while ticks < 20 and time.monotonic() < deadline:
            await anyio.sleep(0.005)
            ticks += 1
        credential.release.set()
    assert 20 == ticks
    assert ["sync-token", "sync-token"] == got
    [thread] = credential.threads  # asked once, for both
    assert thread is not threading.main_thread()


async def test_a_token_without_expires_on_is_asked_for_every_time() -> None:
    class Bare:
        calls = 0

        def get_token(self, *scopes: str) -> str:
            self.calls += 1
            return f"bare-{self.calls}"

    credential = Bare()
    cache = TokenCache(credential)
    assert ["bare-1", "bare-2"] == [await cache.get(), await cache.get()]


async def test_the_token_never_appears_in_the_cache_repr() -> None:
    wall = WallClock()
    cache = TokenCache(AsyncCredential(wall), wall_clock=wall)
    await cache.get()
    assert "token-1" not in repr(cache)


@pytest.mark.parametrize(
    ("cloud", "host"),
    [
        ("global", "graph.microsoft.com"),
        ("usgov", "graph.microsoft.us"),
        ("dod", "dod-graph.microsoft.us"),
        ("china", "microsoftgraph.chinacloudapi.cn"),
    ],
)
async def test_cloud_chooses_the_base_url_and_the_scope_together(
    cloud: str, host: str, virtual_clock: VirtualClock
) -> None:
    wall = WallClock()
    credential = AsyncCredential(wall)
    client = callflow.Client(token=credential, cloud=cloud, clock=virtual_clock)
    assert f"https://{host}/v1.0" == client.base_url
    assert CLOUDS[cloud] is client.cloud
    client._tokens._wall_clock = wall
    assert "token-1" == await client._tokens.get()
    assert [(f"https://{host}/.default",)] == credential.calls


def test_an_unknown_cloud_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"cloud='gcc' is not a Graph cloud; .*'usgov'"):
        callflow.Client(cloud="gcc")


def test_an_explicit_base_url_wins_over_the_cloud_default() -> None:
    client = callflow.Client(cloud="usgov", base_url="https://graph.example/v1.0/")
    assert "https://graph.example/v1.0" == client.base_url
    assert "https://graph.microsoft.us/.default" == client.cloud.scope
