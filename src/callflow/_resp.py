"""A lean Redis connection for RedisStore's scripts: RESP2, one socket, no helper tasks.

Theory of operation
-------------------
coredis sends each command through its own writer and reader tasks and a handful of
cancel scopes: about five event-loop passes per command, ~250 us of its ~330 us round
trip on the 2-core benchmark machine (cProfile; README, "Running a fleet"). Every
notification RedisStore applies is one script (EVALSHA), so that cost is paid per
notification. :class:`Connection` makes the same round trip with the fewest passes the
event loop allows, and RedisStore sends its scripts through it; the rest (pub/sub, the
occasional SET or pipeline) stays on coredis.

- **asyncio**: an :class:`asyncio.Protocol`. A command writes its bytes and awaits a
  future; ``data_received`` parses the replies and resolves the futures in order. Many
  commands may be in flight (pipelined). A caller cancelled while waiting leaves its
  future cancelled: its reply, when it comes, is read and dropped, so the others'
  replies stay in step.
- **trio** (and any other anyio backend): an anyio byte stream; one command at a time
  under a lock, written and read in the caller's task. A caller cancelled half-way
  leaves the stream mid-reply, so the connection is closed and the next command opens a
  new one.

Either way a command whose connection breaks raises :class:`ConnectionError` (an
``OSError``) naming the server, and the next command reconnects. Nothing is re-sent:
whether a script that was in flight ran is unknown, as for any client.

Only what RedisStore needs: ``redis://[user:password@]host[:port][/db]``; TLS, unix
sockets, query options and clusters are coredis' (:meth:`Address.from_url` says None).
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse
from collections.abc import Sequence
from typing import Any, Final, Protocol

import anyio
import anyio.abc
import attrs

__all__ = ["Address", "Connection", "ReplyError", "encode", "Parser"]

_CRLF: Final = b"\r\n"


class ReplyError(Exception):
    """An error reply from the server (``-ERR ...``, ``-NOSCRIPT ...``); its text."""


@attrs.frozen
class Address:
    """Where a plain ``redis://`` URL points, and how to log in there."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Address | None:
        """The address of a ``redis://host:port/db`` URL; None for what only coredis does.

        None for ``rediss://`` (TLS), ``unix://``, a URL with query options, or one whose
        parts do not parse: coredis, which reads every option, serves those.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "redis" or parts.query or parts.fragment or not parts.hostname:
            return None
        path = parts.path.strip("/")
        try:
            port = parts.port or 6379
            db = int(path) if path else 0
        except ValueError:
            return None
        unquote = urllib.parse.unquote
        return cls(
            host=parts.hostname,
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


def encode(args: Sequence[str | int | float]) -> bytes:
    """One command as RESP2: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


class Parser:
    """RESP2 replies from a byte stream, fed in whatever pieces the socket gives.

    Bulk strings are decoded as UTF-8 (as coredis' ``decode_responses=True``), integers
    are ints, nil is None, an error reply is a :class:`ReplyError` *value* (the caller
    raises it: one error must not cost the replies after it).
    """

    __slots__ = ("_buffer", "_start")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; the replies it completes, in order."""
        buffer = self._buffer
        buffer += data
        replies = []
        while self._start < len(buffer):
            try:
                reply, self._start = self._parse(self._start)
            except _Incomplete:
                break
            replies.append(reply)
        if self._start:
            del buffer[: self._start]
            self._start = 0
        return replies

    def _line(self, at: int) -> tuple[bytes, int]:
        end = self._buffer.find(_CRLF, at)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[at + 1 : end]), end + 2

    def _parse(self, at: int) -> tuple[Any, int]:
        buffer = self._buffer
        if at >= len(buffer):
            raise _Incomplete
        kind = buffer[at]
        line, at = self._line(at)
        if kind == 0x24:  # $ bulk string
            size = int(line)
            if size < 0:
                return None, at
            end = at + size
            if len(buffer) < end + 2:
                raise _Incomplete
            return buffer[at:end].decode(), end + 2
        if kind == 0x3A:  # : integer
            return int(line), at
        if kind == 0x2A:  # * array
            size = int(line)
            if size < 0:
                return None, at
            items = []
            for _ in range(size):
                item, at = self._parse(at)
                items.append(item)
            return items, at
        if kind == 0x2B:  # + simple string
            return line.decode(), at
        if kind == 0x2D:  # - error
            return ReplyError(line.decode(errors="replace")), at
        raise ValueError(f"not a RESP2 reply: type byte {bytes([kind])!r}")


class _Link(Protocol):
    @property
    def is_open(self) -> bool: ...
    async def roundtrip(self, data: bytes, replies: int) -> list[Any]: ...
    async def aclose(self) -> None: ...


class _AsyncioLink(asyncio.Protocol):
    """asyncio: replies resolve the waiting futures in order (see the module docstring)."""

    def __init__(self) -> None:
        self._parser = Parser()
        self._waiting: collections.deque[tuple[asyncio.Future[list[Any]], list[Any], int]]
        self._waiting = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._lost: ConnectionError | None = None

    @property
    def is_open(self) -> bool:
        return self._lost is None and self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting
        try:
            replies = self._parser.feed(data)
        except (ValueError, UnicodeDecodeError) as exc:
            self._fail(f"unreadable reply: {exc}")
            return
        for reply in replies:
            if not waiting:
                self._fail("a reply nobody asked for")
                return
            future, got, want = waiting[0]
            got.append(reply)
            if len(got) == want:
                waiting.popleft()
                if not future.done():  # a cancelled caller's reply is dropped
                    future.set_result(got)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost ({exc or 'closed by the server'})")

    def _fail(self, why: str) -> None:
        if self._lost is None:
            self._lost = ConnectionError(why)
        while self._waiting:
            future = self._waiting.popleft()[0]
            if not future.done():
                future.set_exception(self._lost)
        if self._transport is not None:
            self._transport.abort()

    async def roundtrip(self, data: bytes, replies: int) -> list[Any]:
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((future, [], replies))
        self._transport.write(data)
        return await future

    async def aclose(self) -> None:
        self._fail("connection closed")


#: What an anyio stream raises when its connection is gone.
_GONE: Final = (OSError, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class _StreamLink:
    """Any anyio backend: one command at a time on a byte stream (module docstring)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._parser = Parser()
        self._lock = anyio.Lock(fast_acquire=True)  # send and receive checkpoint anyway
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    async def roundtrip(self, data: bytes, replies: int) -> list[Any]:
        async with self._lock:
            if not self._open:
                raise ConnectionError("connection closed")
            got: list[Any] = []
            try:
                await self._stream.send(data)
                while len(got) < replies:
                    got += self._parser.feed(await self._stream.receive())
            except _GONE as exc:
                await self.aclose()
                raise ConnectionError(f"connection lost ({exc!r})") from None
            except (ValueError, UnicodeDecodeError) as exc:
                await self.aclose()
                raise ConnectionError(f"unreadable reply: {exc}") from None
            except BaseException:
                await self.aclose()  # left mid-reply: the next command opens a new one
                raise
            if len(got) > replies:
                await self.aclose()
                raise ConnectionError("a reply nobody asked for")
            return got

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            await anyio.aclose_forcefully(self._stream)


class Connection:
    """A lazily opened RESP2 connection to one Redis server (see the module docstring).

    Args:
        address: where it connects and how it logs in.
    """

    def __init__(self, address: Address) -> None:
        self.address = address
        self._link: _Link | None = None
        self._connecting = anyio.Lock()

    def __repr__(self) -> str:
        return f"Connection({str(self.address)!r})"

    async def call(self, *args: str | int | float) -> Any:
        """Send one command; its reply.

        Raises:
            ReplyError: the server answered with an error.
            ConnectionError: the connection could not be made, or broke with the
                command in flight (the next call reconnects).
        """
        (reply,) = await self.pipeline([args])
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Sequence[str | int | float]]) -> list[Any]:
        """Send the commands in one write; their replies in order (errors as values).

        Raises:
            ConnectionError: as :meth:`call`.
        """
        link = self._link
        if link is None or not link.is_open:
            link = await self._connect()
        data = b"".join([encode(command) for command in commands])
        try:
            return await link.roundtrip(data, len(commands))
        except OSError as exc:
            raise ConnectionError(f"Redis at {self.address}: {exc}") from None

    async def _connect(self) -> _Link:
        async with self._connecting:
            if self._link is not None and self._link.is_open:
                return self._link
            address = self.address
            try:
                link = await self._open()
                login: list[Sequence[str | int | float]] = []
                if address.password is not None:
                    login.append(("AUTH", address.username or "default", address.password))
                if address.db:
                    login.append(("SELECT", address.db))
                replies = []
                if login:
                    replies = await link.roundtrip(b"".join(map(encode, login)), len(login))
            except OSError as exc:
                raise ConnectionError(f"Redis at {address}: cannot connect: {exc}") from None
            for command, reply in zip(login, replies, strict=True):
                if isinstance(reply, ReplyError):
                    await link.aclose()
                    # AUTH's arguments are the secret: name the command, not its args.
                    raise ConnectionError(f"Redis at {address}: {command[0]} refused: {reply}")
            self._link = link
            return link

    async def _open(self) -> _Link:
        address = self.address
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: trio, or another anyio backend
            stream = await anyio.connect_tcp(address.host, address.port)
            return _StreamLink(stream)
        _, protocol = await loop.create_connection(_AsyncioLink, address.host, address.port)
        return protocol

    async def aclose(self) -> None:
        """Close the socket (commands in flight raise ConnectionError); idempotent."""
        link, self._link = self._link, None
        if link is not None:
            await link.aclose()
