"""The lean RESP2 connection RedisStore sends its scripts over, on a real Redis server."""

from __future__ import annotations

import itertools
import string

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callflow._resp import Address, Connection, Parser, ReplyError, encode

# -- replies and commands as bytes --------------------------------------------------------

REPLIES = (
    b"+OK\r\n:42\r\n$5\r\nh\xc3\xa9lo\r\n$-1\r\n*-1\r\n-NOSCRIPT No matching script\r\n"
    b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n:-7\r\n*0\r\n"
)
PARSED = ["OK", 42, "hélo", None, None, "NOSCRIPT No matching script", [1, ["a", ""], -7], []]


def _plain(replies: list[object]) -> list[object]:
    return [str(r) if isinstance(r, ReplyError) else r for r in replies]


def test_replies_parse_to_python_values_with_errors_as_values() -> None:
    replies = Parser().feed(REPLIES)

    assert _plain(replies) == PARSED
    assert isinstance(replies[5], ReplyError)


@given(st.lists(st.integers(min_value=1, max_value=len(REPLIES) - 1), unique=True))
def test_replies_cut_anywhere_parse_the_same(cuts: list[int]) -> None:
    parser = Parser()
    replies: list[object] = []
    bounds = [0, *sorted(cuts), len(REPLIES)]
    for start, end in itertools.pairwise(bounds):
        replies += parser.feed(REPLIES[start:end])

    assert _plain(replies) == PARSED


def test_a_reply_of_an_unknown_type_is_refused_by_its_type_byte() -> None:
    with pytest.raises(ValueError, match=r"not a RESP2 reply: type byte b'%'"):
        Parser().feed(b"%1\r\n")


@given(
    st.lists(
        st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
    )
)
def test_a_command_is_an_array_of_bulk_strings(args: list[str | int | float]) -> None:
    # A server reads a command as an array reply: parsing it back gives its arguments.
    assert Parser().feed(encode(args)) == [[str(a) for a in args]]


# -- which URLs the lean connection serves ------------------------------------------------


def test_a_plain_redis_url_gives_its_address_with_the_password_hidden() -> None:
    address = Address.from_url("redis://bot:p%40ss@cache.internal:6380/3")

    assert address == Address("cache.internal", 6380, 3, "bot", "p@ss")
    assert "p@ss" not in repr(address)
    assert "p@ss" not in str(address)
    assert str(address) == "cache.internal:6380/3"
    assert Address.from_url("redis://localhost") == Address("localhost")


@pytest.mark.parametrize(
    "url",
    [
        "rediss://cache:6380/0",  # TLS: coredis'
        "unix:///run/redis.sock",
        "redis://cache:6379/0?socket_timeout=5",  # an option only coredis reads
        "redis://cache:6379/zero",
        "redis://:6379/0",
    ],
)
def test_what_only_coredis_does_has_no_lean_address(url: str) -> None:
    assert Address.from_url(url) is None


# -- on a real server, asyncio and trio ---------------------------------------------------

pytestmark = pytest.mark.anyio


def _connection(redis_url: str, *, db: int | None = None) -> Connection:
    address = Address.from_url(redis_url)
    assert address is not None
    if db is not None:
        address = Address(address.host, address.port, db)
    return Connection(address)


async def test_a_pipeline_answers_in_order_and_an_error_costs_no_other_reply(
    redis_url: str,
) -> None:
    connection = _connection(redis_url)
    key = "resp-test:" + string.ascii_lowercase
    try:
        replies = await connection.pipeline(
            [("SET", key, "v"), ("INCR", key), ("GET", key), ("PING",)]
        )
    finally:
        await connection.aclose()

    assert replies[0] == "OK"
    assert isinstance(replies[1], ReplyError)
    assert "not an integer" in str(replies[1])
    assert replies[2:] == ["v", "PONG"]


async def test_a_caller_cancelled_mid_command_leaves_the_next_reply_its_own(
    redis_url: str,
) -> None:
    connection = _connection(redis_url)
    try:
        with anyio.move_on_after(0.05) as scope:
            await connection.call("BLPOP", "resp-test:never", "0.3")  # blocks 0.3 s
        first = await connection.call("ECHO", "mine")
        second = await connection.call("PING")
    finally:
        await connection.aclose()

    assert scope.cancelled_caught
    assert (first, second) == ("mine", "PONG")


async def test_a_killed_connection_raises_connection_error_then_reconnects(
    redis_url: str,
) -> None:
    connection, killer = _connection(redis_url), _connection(redis_url)
    try:
        first_id = await connection.call("CLIENT", "ID")
        assert await killer.call("CLIENT", "KILL", "ID", first_id) == 1
        errors = []
        for _ in range(3):
            try:
                assert await connection.call("PING") == "PONG"
                break
            except ConnectionError as exc:
                errors.append(str(exc))
        second_id = await connection.call("CLIENT", "ID")
    finally:
        await connection.aclose()
        await killer.aclose()

    assert second_id != first_id
    assert len(errors) <= 1
    assert all(e.startswith(f"Redis at {connection.address}: ") for e in errors)


async def test_select_is_sent_for_a_database_in_the_url(redis_url: str) -> None:
    connection = _connection(redis_url, db=5)
    try:
        info = await connection.call("CLIENT", "INFO")
    finally:
        await connection.aclose()

    assert " db=5 " in info


async def test_a_refused_login_names_the_command_never_the_password(redis_url: str) -> None:
    plain = Address.from_url(redis_url)
    assert plain is not None
    login = Address(plain.host, plain.port, username="nobody", password="s3cret-pa55")
    connection = Connection(login)
    with pytest.raises(ConnectionError) as refused:
        await connection.call("PING")

    assert f"Redis at {plain}: AUTH refused: " in str(refused.value)
    assert "s3cret-pa55" not in str(refused.value)
    assert "s3cret-pa55" not in repr(connection)


async def test_nothing_listening_is_a_connection_error_naming_the_server() -> None:
    from redis_support import free_port

    connection = Connection(Address("127.0.0.1", free_port()))
    with pytest.raises(ConnectionError, match=r"^Redis at 127\.0\.0\.1:\d+/0: cannot connect"):
        await connection.call("PING")
