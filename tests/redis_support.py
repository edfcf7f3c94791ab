"""A real redis-server for the tests: the one `.ci/run` started, or one of our own.

`.ci/run` starts a throwaway server and exports its URL as ``CALLFLOW_TEST_REDIS_URL``.
A developer running pytest directly has no such variable: then :func:`running_server`
starts ``redis-server`` on a free loopback port (no persistence) for the session and
stops it at the end. A machine without redis-server is an error saying what to install,
never a skip: these tests prove the fleet guarantees and must not pass by not running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

URL_VARIABLE: Final = "CALLFLOW_TEST_REDIS_URL"


class RedisUnavailable(RuntimeError):
    """redis-server is not installed, or did not start."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_server(*extra: str) -> Iterator[int]:
    """Start a redis-server on a free loopback port; yield its port; stop it.

    Args:
        extra: more ``redis-server`` arguments (e.g. ``--cluster-enabled yes``).

    Raises:
        RedisUnavailable: redis-server is missing or did not answer within 5 s.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(
            "redis-server is not installed: the Redis store's tests need a real server "
            "(apt-get install redis-server, brew install redis), or set "
            f"{URL_VARIABLE} to a server's redis:// URL"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="callflow-redis-") as directory:
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
        args += ["no", "--dir", directory, *extra]
        log = Path(directory) / "redis.log"
        with log.open("wb") as output:
            server = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 5
            while not _ping(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RedisUnavailable(f"redis-server did not start: {log.read_text()}")
                time.sleep(0.05)
            yield port
        finally:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _cluster_ok(port: int) -> bool:
    info = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    )
    return "cluster_state:ok" in info.stdout


@contextmanager
def running_cluster(nodes: int = 3) -> Iterator[int]:
    """Start a Redis Cluster of ``nodes`` masters on loopback; yield one node's port.

    Raises:
        RedisUnavailable: a node did not start, or the cluster did not form within 10 s.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(nodes):
            bus = str(free_port())  # the default, port + 10000, may be out of range
            extra = ("--cluster-enabled", "yes", "--cluster-port", bus)
            ports.append(stack.enter_context(running_server(*extra)))
        addresses = [f"127.0.0.1:{port}" for port in ports]
        create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        made = subprocess.run(
            [*create, "--cluster-yes"], capture_output=True, text=True, check=False, timeout=30
        )
        deadline = time.monotonic() + 10
        while not all(_cluster_ok(port) for port in ports):
            if made.returncode != 0 or time.monotonic() > deadline:
                raise RedisUnavailable(f"the cluster did not form: {made.stdout}{made.stderr}")
            time.sleep(0.1)
        yield ports[0]


@contextmanager
def redis_server_url() -> Iterator[str]:
    """The URL of the run's Redis: ``CALLFLOW_TEST_REDIS_URL``, or a server of our own."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    with running_server() as port:
        yield f"redis://127.0.0.1:{port}/0"
