"""RedisStore: the :class:`~callflow._store.Store` contract on Redis, for a fleet.

Install with ``pip install 'callflow[redis]'`` (coredis: anyio-native, so asyncio and trio).

Theory of operation
-------------------
Every step that must be atomic is one Lua script over keys of ONE hash slot, so the
layout works on Redis Cluster as on one server. An invite's keys carry its call's hash
tag, so an invite, its inputs, its dedupe set and its call's route all live in one slot:

=====================================  =======  =================================================
key (``P`` is the prefix)              type     holds
=====================================  =======  =================================================
``P:{call:<call_id>}:inv:<invite_id>``  hash     ``call_id``, ``client_context``, ``routes``
                                                 (JSON list), ``version`` + ``snapshot``, ``done``,
                                                 ``watchers`` (the instances to tell)
``P:{call:<call_id>}:inv:<id>:inputs``  list     the inputs, trace events as JSON, in order
``P:{call:<call_id>}:inv:<id>:seen``    set      the fingerprints of those inputs
``P:{call:<call_id>}:route``            set      the in-flight invites of that call (also the
                                                 ones replacing it: ``{call:<replacesCallId>}``)
``P:{<route key>}:route``               set      the invites another route key names
                                                 (``clientContext:…``, ``operation:…``)
``P:{clientContext:<cc>}:claim``        string   the in-flight invite holding the clientContext
``P:{inv:<invite_id>}``                 string   the invite's call id (finds its slot)
``P:{deadlines}``                       zset     invite id -> its deadline (the engine's clock)
channel ``P:changes:<instance>``        pub/sub  each kept snapshot of an invite the instance
                                                 watches, as a :class:`Change`
=====================================  =======  =================================================

- **append** (one script, the invite's slot): read the record's watchers (which also
  says the record exists), SADD the fingerprint to ``seen``; only if it
  was not there, RPUSH the input, and when the caller's snapshot covers exactly the new
  count, HSET it and PUBLISH it to each of the invite's ``watchers`` but the appender.
  Two instances appending the same duplicate at once: one SADD wins, the other is told
  ``new=False``. One round trip per notification.
- **watchers**: every RedisStore object is an instance with an id of its own and one
  channel, ``P:changes:<id>``. An invite's watchers are the instance that registered it
  and those that :meth:`~RedisStore.watch` it (``client.attach``). A change is published
  only to them, never back to the instance that made it (it has it already): an
  instance parses the changes it waits for, not every change of the fleet.
- **claim_due** (one script on ``{deadlines}``): ZRANGEBYSCORE the due ones and move each to
  ``now + lease`` in the same step, so two instances never claim the same one; a claimer
  that dies lets it fall due again after the lease.
- **register** takes the clientContext with ``SET NX`` first (the refusal point), then
  writes the invite's slot in one script, then the routes in other slots.
- **release** frees the claim (compare-and-delete), drops the deadline and the call routes,
  and sets the TTL on the record and its other routes.
- The deadlines zset is one slot: every instance claims from it. A fleet that outgrows
  one slot's throughput for deadlines alone is far past the scale this was measured at.

Memory: the spec's example 4 in flight (its invite event, the 200 answer, the completed
notification) takes 4,008 B of Redis 7.0 memory (MEMORY USAGE over its 8 keys, see
:meth:`RedisStore.memory_usage` and ``tests/test_store_redis.py``): 1,695 B are the
inputs' own compact JSON, ~2.3 KB the keys (the inputs list 2.2 KB, the record 630 B,
the dedupe set 300 B, each route set 240 B, claim 136 B, locator 120 B).

Why coredis (measured on this 2-core machine, loopback, one connection, 2,000 calls):

==============  =========  ==========  ==========  =========================================
client          backend    GET         EVALSHA     notes
==============  =========  ==========  ==========  =========================================
(raw socket)    anyio      250-280 us  -           the floor: a bare anyio TCP round trip
coredis 6.9     asyncio    275-320 us  335-375 us  pub/sub works; pure Python, 3.6 MB
coredis 6.9     trio       225-325 us  330-350 us  pub/sub works
valkey-glide    asyncio    95-235 us   190-255 us  pub/sub works; Rust core in its own thread
valkey-glide    trio       110-210 us  190-230 us  pub/sub works; 21 MB, + protobuf, cffi
==============  =========  ==========  ==========  =========================================

Both work on asyncio and trio. glide is faster per round trip here (its I/O runs in a
Rust thread outside the event loop), coredis is within ~20 % of a bare anyio socket. We
chose coredis: it is built on anyio's structured concurrency (its client and pub/sub
are async context managers whose tasks live in the caller's task group, so leaving the
``Client``'s ``async with`` leaks nothing, on either loop, with no thread hopping), it is
fully typed (mypy --strict sees real types), pure Python with one dependency tree
(anyio), loads Lua scripts by SHA with a NOSCRIPT fallback, and its cluster client has
the same API. glide remains a drop-in option behind the same ``Store`` protocol.

The scripts, though, go over a lean connection of callflow's own (``_resp.py``) when the
URL is a plain ``redis://`` one: a notification is one script, and coredis' command path
(writer and reader tasks, five cancel scopes) was ~250 us of its ~330 us round trip here.
The lean connection's round trip is a PING's: 60-95 us on asyncio, 30 us on trio, on
this machine. coredis keeps pub/sub, the plain commands, TLS, unix sockets and clusters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._resp import Address, Connection, ReplyError
from ._store import (
    INVITE_FINGERPRINT,
    Appended,
    Change,
    ClientContextInFlight,
    Due,
    Snapshot,
    StoreError,
    UnknownInvite,
    call_key,
    change_json,
    check_event,
    check_invite_event,
    client_context_key,
)

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisStore"]

#: How many invite -> call ids an instance remembers (the rest cost one GET to find).
_REMEMBERED = 100_000

_REGISTER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'call_id', ARGV[1], 'client_context', ARGV[2], 'routes', ARGV[3],
           'version', 0, 'done', 0, 'watchers', ARGV[7])
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[6])
return 1
"""

# Publishing a change: to each watcher's channel (``<prefix>:changes:<instance>``) but the
# publisher's own (it has the change already). Shared by the scripts that keep a snapshot.
_PUBLISH = """
local function publish(watchers, channels, me, change)
  for watcher in string.gmatch(watchers, '%S+') do
    if watcher ~= me then redis.call('PUBLISH', channels .. watcher, change) end
  end
end
"""

_APPEND = (
    _PUBLISH
    + """
local watchers = redis.call('HGET', KEYS[1], 'watchers')
if not watchers then return {-1, 0, 0} end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return {0, redis.call('LLEN', KEYS[2]), 0} end
local n = redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[3] ~= '' and tonumber(ARGV[3]) == n then
  redis.call('HSET', KEYS[1], 'version', n, 'snapshot', ARGV[4])
  publish(watchers, ARGV[5], ARGV[9], ARGV[6])
  if KEYS[4] then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8]) end
  return {1, n, 1}
end
return {1, n, 0}
"""
)

_SAVE_SNAPSHOT = (
    _PUBLISH
    + """
local record = redis.call('HMGET', KEYS[1], 'watchers', 'version')
if not record[1] then return -1 end
local kept = tonumber(record[2]) or 0
local v = tonumber(ARGV[1])
if v <= kept or v > redis.call('LLEN', KEYS[2]) then return 0 end
redis.call('HSET', KEYS[1], 'version', v, 'snapshot', ARGV[2])
publish(record[1], ARGV[3], ARGV[5], ARGV[4])
return 1
"""
)

_WATCH = """
local watchers = redis.call('HGET', KEYS[1], 'watchers')
if not watchers then return -1 end
for watcher in string.gmatch(watchers, '%S+') do
  if watcher == ARGV[1] then return 0 end
end
redis.call('HSET', KEYS[1], 'watchers', watchers .. ' ' .. ARGV[1])
return 1
"""

_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3],
                       'WITHSCORES')
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[2], due[i]) end
return due
"""

_RELEASE_INVITE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'done', 1)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 1
"""

_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


@functools.cache
def _sha(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


def _json(value: Any) -> str:
    """Compact JSON: inputs are most of an invite's memory."""
    return json.dumps(value, separators=(",", ":"))


def _coredis() -> Any:
    try:
        import coredis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("RedisStore needs coredis: pip install 'callflow[redis]'") from None
    return coredis


def _close_cluster_layout(client: Any) -> None:
    """Close the memory streams coredis 6.9's cluster layout leaves open on exit.

    Its ``ClusterLayout`` makes an anyio memory stream pair that nothing closes: collected
    later (during whatever runs then), they warn "unclosed stream" (a ResourceWarning,
    an error under ``-W error``). Closed here, when the store is left, nothing is left.
    """
    layout = getattr(getattr(client, "connection_pool", None), "cluster_layout", None)
    for stream in getattr(layout, "_error_stream", ()):
        stream.close()


def _closed() -> StoreError:
    return StoreError("RedisStore is not open: use it as `async with RedisStore(url)`")


class _Changes:
    """The changes a pub/sub subscription receives (a plain iterator: nothing to close)."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    def __aiter__(self) -> _Changes:
        return self

    async def __anext__(self) -> Change:
        while True:
            message = await self._pubsub.__anext__()
            if message["type"] == "message":
                return Change.from_json(str(message["data"]))


class RedisStore:
    """The store on a Redis server or a Redis Cluster (``cluster=True``), shared by a fleet.

    Use it as an async context manager: entering connects, leaving disconnects.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); for a cluster, any node.
        prefix: the first part of every key and of the channel; one deployment's name.
        cluster: the URL names a Redis Cluster node (the client then follows the slots).
    """

    def __init__(self, url: str, *, prefix: str = "callflow", cluster: bool = False) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise StoreError(f"not a Redis URL: {url.split('@')[-1]!r} (redis://host:port/db)")
        self._url = url
        self._prefix = prefix
        self._cluster = cluster
        # This store object's instance id: the changes of the invites it watches are
        # published to its own channel, and never to it when it made them.
        self._me = uuid.uuid4().hex[:12]
        self._channels = f"{prefix}:changes:"
        self._client: coredis.Redis[str] | coredis.RedisCluster[str] | None = None
        # The scripts (one per notification) go over a lean connection of our own where
        # the URL is a plain redis:// one (callflow/_resp.py says why); else coredis'.
        address = None if cluster else Address.from_url(url)
        self._lean = None if address is None else Connection(address)
        self._calls: dict[str, str] = {}

    def __repr__(self) -> str:
        # The URL may carry a password: show only where it points.
        return f"RedisStore({self._url.split('@')[-1]!r}, prefix={self._prefix!r})"

    async def __aenter__(self) -> RedisStore:
        coredis = _coredis()
        if self._cluster:
            # Not RedisCluster.from_url: it hands its pool startup nodes in a form coredis
            # itself deprecates (a DeprecationWarning on every connect).
            url = urllib.parse.urlsplit(self._url)
            client = coredis.RedisCluster(
                url.hostname,
                url.port or 6379,
                username=url.username or None,
                password=url.password or None,
                ssl=url.scheme == "rediss",
                decode_responses=True,
            )
        else:
            client = coredis.Redis.from_url(self._url, decode_responses=True)
        await client.__aenter__()
        self._client = client
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        try:
            if self._lean is not None:
                await self._lean.aclose()
        finally:
            if client is not None:
                try:
                    await client.__aexit__(exc_type, exc, tb)
                finally:
                    _close_cluster_layout(client)

    @property
    def _redis(self) -> coredis.Redis[str] | coredis.RedisCluster[str]:
        if self._client is None:
            raise _closed()
        return self._client

    # -- keys -----------------------------------------------------------------------------
    def _invite_keys(self, call_id: str, invite_id: str) -> list[str]:
        record = f"{self._prefix}:{{call:{call_id}}}:inv:{invite_id}"
        return [record, f"{record}:inputs", f"{record}:seen"]

    def _route(self, key: str) -> str:
        return f"{self._prefix}:{{{key}}}:route"

    def _claim(self, client_context: str) -> str:
        return f"{self._prefix}:{{{client_context_key(client_context)}}}:claim"

    def _locator(self, invite_id: str) -> str:
        return f"{self._prefix}:{{inv:{invite_id}}}"

    @property
    def _deadlines(self) -> str:
        return f"{self._prefix}:{{deadlines}}"

    def keys_of(self, invite_id: str, call_id: str) -> list[str]:
        """The Redis keys of one invite's own record (all in its call's slot)."""
        return [*self._invite_keys(call_id, invite_id), self._route(call_key(call_id))]

    async def _call_of(self, invite_id: str) -> str:
        call_id = self._calls.get(invite_id)
        if call_id is None:
            call_id = await self._redis.get(self._locator(invite_id))
            if call_id is None:
                raise UnknownInvite(invite_id)
            self._remember(invite_id, call_id)
        return call_id

    def _remember(self, invite_id: str, call_id: str) -> None:
        # Bounded: an invite another instance released is never popped here.
        if len(self._calls) >= _REMEMBERED:
            del self._calls[next(iter(self._calls))]
        self._calls[invite_id] = call_id

    async def _eval(self, script: str, keys: list[str], args: list[str | int | float]) -> Any:
        # EVALSHA; the server lacks the script only the first time (or after a restart).
        sha = _sha(script)
        lean = self._lean
        if lean is not None:
            if self._client is None:
                raise _closed()
            command = ("EVALSHA", sha, len(keys), *keys, *args)
            reply = (await lean.pipeline([command]))[0]
            if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
                reply = (await lean.pipeline([("SCRIPT", "LOAD", script), command]))[1]
            if isinstance(reply, ReplyError):
                raise StoreError(f"Redis refused a callflow script: {reply}")
            return reply
        # Plain evalsha, not coredis' Script wrapper: its retry plumbing costs ~100 us.
        try:
            return await self._redis.evalsha(sha, keys=keys, args=args)
        except _coredis().exceptions.NoScriptError:
            await self._redis.script_load(script)
            return await self._redis.evalsha(sha, keys=keys, args=args)

    async def _ping(self) -> None:
        """One PING, over the connection the scripts use (the benchmark's round trip)."""
        if self._lean is not None:
            await self._lean.call("PING")
        else:
            await self._redis.ping()

    # -- the contract ---------------------------------------------------------------------
    async def register(
        self,
        invite_id: str,
        event: Mapping[str, Any],
        *,
        call_id: str,
        client_context: str,
        route_keys: Collection[str] = (),
    ) -> None:
        """See :meth:`callflow._store.Store.register`."""
        check_invite_event(invite_id, event)
        redis = self._redis
        nx = _coredis().PureToken.NX
        # The locator first: it refuses a second invite with this id, and it exists before
        # any route names the invite, so whoever routes to it can find its slot.
        if not await redis.set(self._locator(invite_id), call_id, condition=nx):
            raise StoreError(f"invite {invite_id!r} is already registered")
        if not await redis.set(self._claim(client_context), invite_id, condition=nx):
            await redis.delete([self._locator(invite_id)])
            holder = await redis.get(self._claim(client_context))
            raise ClientContextInFlight(client_context, holder or "?")
        own = call_key(call_id)
        others = [client_context_key(client_context), *(k for k in route_keys if k != own)]
        keys = self.keys_of(invite_id, call_id)
        args: list[str | int | float] = [call_id, client_context, json.dumps(others)]
        args += [_json(dict(event)), INVITE_FINGERPRINT, invite_id, self._me]
        if not await self._eval(_REGISTER, keys, args):  # a record left by a lost locator
            await self._eval(_RELEASE_CLAIM, [self._claim(client_context)], [invite_id])
            raise StoreError(f"invite {invite_id!r} is already registered")
        self._remember(invite_id, call_id)
        await self._add_route_sets(invite_id, others)

    async def _add_route_sets(self, invite_id: str, keys: Iterable[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.sadd(self._route(key), [invite_id])
                if not key.startswith("call:"):
                    pipe.persist(self._route(key))

    async def add_routes(self, invite_id: str, route_keys: Collection[str]) -> None:
        """See :meth:`callflow._store.Store.add_routes`."""
        call_id = await self._call_of(invite_id)
        record = self._invite_keys(call_id, invite_id)[0]
        known = await self._redis.hget(record, "routes")
        if known is None:
            raise UnknownInvite(invite_id)
        routes = [*json.loads(known), *(k for k in route_keys if k != call_key(call_id))]
        await self._redis.hset(record, {"routes": json.dumps(list(dict.fromkeys(routes)))})
        await self._add_route_sets(invite_id, route_keys)

    async def route(self, route_keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """See :meth:`callflow._store.Store.route`."""
        keys = list(dict.fromkeys(route_keys))
        async with self._redis.pipeline(transaction=False) as pipe:
            replies = [pipe.smembers(self._route(key)) for key in keys]
        found = {}
        for key, reply in zip(keys, replies, strict=True):
            members = await reply
            if members:
                found[key] = tuple(sorted(members))
        return found

    async def append(
        self,
        invite_id: str,
        fingerprint: str,
        event: Mapping[str, Any],
        *,
        snapshot: Snapshot | None = None,
        deadline: float | None = None,
    ) -> Appended:
        """See :meth:`callflow._store.Store.append`.

        On one server the deadline is set by the same script (one round trip); on a
        cluster its key is in another slot, so it is set by a second command.
        """
        check_event(invite_id, event)
        call_id = await self._call_of(invite_id)
        keys = self._invite_keys(call_id, invite_id)
        args: list[str | int | float] = [fingerprint, _json(dict(event))]
        if snapshot is None:
            args += ["", "", "", ""]
        else:
            kept = _json(snapshot.to_dict())
            args += [snapshot.version, kept, self._channels, change_json(invite_id, kept)]
            if deadline is not None and not self._cluster:
                keys.append(self._deadlines)
                args += [repr(deadline), invite_id, self._me]
            else:
                args += ["", "", self._me]
        new, count, saved = await self._eval(_APPEND, keys, args)
        if new == -1:
            raise UnknownInvite(invite_id)
        if saved and deadline is not None and self._cluster:
            await self._redis.zadd(self._deadlines, {invite_id: deadline})
        return Appended(new=bool(new), count=int(count), saved=bool(saved))

    async def inputs(self, invite_id: str, start: int = 0) -> list[dict[str, Any]]:
        """See :meth:`callflow._store.Store.inputs`."""
        call_id = await self._call_of(invite_id)
        record, inputs, _ = self._invite_keys(call_id, invite_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            exists = pipe.exists([record])
            events = pipe.lrange(inputs, start, -1)
        if not await exists:
            raise UnknownInvite(invite_id)
        return [json.loads(e) for e in await events]

    async def snapshot(self, invite_id: str) -> Snapshot | None:
        """See :meth:`callflow._store.Store.snapshot`."""
        call_id = await self._call_of(invite_id)
        record = self._invite_keys(call_id, invite_id)[0]
        fields = await self._redis.hmget(record, ["call_id", "snapshot"])
        if fields[0] is None:
            raise UnknownInvite(invite_id)
        return None if fields[1] is None else Snapshot.from_dict(json.loads(fields[1]))

    async def save_snapshot(self, invite_id: str, snapshot: Snapshot) -> bool:
        """See :meth:`callflow._store.Store.save_snapshot`."""
        call_id = await self._call_of(invite_id)
        keys = self._invite_keys(call_id, invite_id)[:2]
        kept = _json(snapshot.to_dict())
        args: list[str | int | float] = [snapshot.version, kept]
        args += [self._channels, change_json(invite_id, kept), self._me]
        saved = await self._eval(_SAVE_SNAPSHOT, keys, args)
        if saved == -1:
            raise UnknownInvite(invite_id)
        return bool(saved)

    async def watch(self, invite_id: str) -> None:
        """See :meth:`callflow._store.Store.watch`."""
        call_id = await self._call_of(invite_id)
        record = self._invite_keys(call_id, invite_id)[0]
        if await self._eval(_WATCH, [record], [self._me]) == -1:
            raise UnknownInvite(invite_id)

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[Change]]:
        async with self._redis.pubsub(
            channels=[self._channels + self._me], ignore_subscribe_messages=True
        ) as pubsub:
            yield _Changes(pubsub)

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Change]]:
        """See :meth:`callflow._store.Store.subscribe`."""
        return self._subscription()

    async def schedule(self, invite_id: str, at: float) -> None:
        """See :meth:`callflow._store.Store.schedule`."""
        await self._call_of(invite_id)
        await self._redis.zadd(self._deadlines, {invite_id: at})

    async def claim_due(self, now: float, *, lease: float, limit: int = 100) -> list[Due]:
        """See :meth:`callflow._store.Store.claim_due`."""
        flat = await self._eval(
            _CLAIM_DUE, [self._deadlines], [repr(now), repr(now + lease), limit]
        )
        return [Due(invite_id=flat[i], at=float(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def release(self, invite_id: str, ttl: float) -> None:
        """See :meth:`callflow._store.Store.release`."""
        call_id = await self._call_of(invite_id)
        redis = self._redis
        record = self._invite_keys(call_id, invite_id)[0]
        fields = await redis.hmget(record, ["client_context", "routes"])
        if fields[0] is None or fields[1] is None:
            raise UnknownInvite(invite_id)
        ms = max(1, round(ttl * 1000))
        await self._eval(_RELEASE_INVITE, self._invite_keys(call_id, invite_id), [ms])
        await self._eval(_RELEASE_CLAIM, [self._claim(fields[0])], [invite_id])
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._deadlines, [invite_id])
            pipe.pexpire(self._locator(invite_id), ms)
            for key in [call_key(call_id), *json.loads(fields[1])]:
                if key.startswith("call:"):
                    pipe.srem(self._route(key), [invite_id])
                else:
                    pipe.pexpire(self._route(key), ms)
        self._calls.pop(invite_id, None)

    async def memory_usage(self, invite_id: str) -> int:
        """Bytes of Redis memory an invite's keys take (MEMORY USAGE over them).

        Counts its record, inputs, dedupe set, locator, clientContext claim and route sets
        (a route set shared with other invites is counted whole).

        Raises:
            UnknownInvite: no such invite.
        """
        call_id = await self._call_of(invite_id)
        record = self._invite_keys(call_id, invite_id)[0]
        fields = await self._redis.hmget(record, ["client_context", "routes"])
        if fields[0] is None or fields[1] is None:
            raise UnknownInvite(invite_id)
        keys = [*self.keys_of(invite_id, call_id), self._locator(invite_id)]
        keys += [self._claim(fields[0]), *(self._route(k) for k in json.loads(fields[1]))]
        total = 0
        for key in keys:
            total += await self._redis.memory_usage(key) or 0
        return total
