"""Bearer tokens for Graph: a string, a callable, or an azure-identity credential.

An azure-identity credential's token is cached until its ``expires_on`` minus a margin,
with one refresh at a time however many invites want it; an async credential
(``azure.identity.aio``) is awaited, a sync one runs in a worker thread so a refresh (a
blocking HTTP request) never blocks the event loop. A plain callable is called for every
request (it does its own caching). A token is never logged, repr'd or put in an exception
message.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import anyio.to_thread

__all__ = [
    "TokenSource",
    "TokenCredential",
    "GRAPH_SCOPE",
    "Cloud",
    "CLOUDS",
    "cloud_named",
    "TokenCache",
    "resolve_token",
]


class Cloud:
    """A Microsoft Graph deployment: its REST root and the token scope that goes with it.

    Attributes:
        name: the name ``Client(cloud=...)`` takes.
        graph_root: the service root endpoint, e.g. ``https://graph.microsoft.us``.
        base_url: ``graph_root`` + ``/v1.0``: where the Client sends its requests.
        scope: the ``.default`` scope a credential is asked for (its host must be the
            cloud's Graph host; a token for another cloud is refused).

    """

    __slots__ = ("base_url", "graph_root", "name", "scope")

    def __init__(self, name: str, graph_root: str) -> None:
        self.name = name
        self.graph_root = graph_root
        self.base_url = graph_root + "/v1.0"
        self.scope = graph_root + "/.default"

    def __repr__(self) -> str:
        return f"Cloud({self.name!r}, {self.graph_root!r})"


#: The national cloud deployments (https://learn.microsoft.com/graph/deployments).
CLOUDS: Final[dict[str, Cloud]] = {
    cloud.name: cloud
    for cloud in (
        Cloud("global", "https://graph.microsoft.com"),
        Cloud("usgov", "https://graph.microsoft.us"),  # US Government L4 (GCC High)
        Cloud("dod", "https://dod-graph.microsoft.us"),  # US Government L5 (DoD)
        Cloud("china", "https://microsoftgraph.chinacloudapi.cn"),  # operated by 21Vianet
    )
}

#: The scope an azure-identity credential is asked for on the global cloud.
GRAPH_SCOPE: Final = CLOUDS["global"].scope


def cloud_named(name: str) -> Cloud:
    """The cloud called ``name``.

    Args:
        name: one of ``"global"``, ``"usgov"``, ``"dod"``, ``"china"``.

    Returns:
        Its :class:`Cloud`.

    Raises:
        ValueError: ``name`` is not one of them.

    """
    try:
        return CLOUDS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in CLOUDS)
        raise ValueError(f"cloud={name!r} is not a Graph cloud; expected one of {known}") from None


@runtime_checkable
class TokenCredential(Protocol):
    """What callflow needs of an azure-identity credential (sync or async)."""

    def get_token(self, *scopes: str) -> Any:
        """Return an ``AccessToken`` (or an awaitable of one) for ``scopes``."""
        ...


TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]] | TokenCredential


def _is_credential(source: object) -> bool:
    return isinstance(source, TokenCredential) and not callable(source)


def _checked(result: object) -> str:
    if not isinstance(result, str) or not result:
        raise TypeError(f"the token provider returned {type(result).__name__}, not a string")
    return result


class TokenCache:
    """The bearer token for each request, from a :data:`TokenSource`.

    A credential's token is kept until ``expires_on - margin`` (wall-clock seconds, as
    azure-identity gives them); concurrent requests that find it stale wait for one
    refresh instead of each asking the credential.

    Args:
        source: the token, a callable, a credential, or None for no Authorization header.
        scope: the scope a credential is asked for.
        margin: seconds before ``expires_on`` at which the token is refreshed.
        wall_clock: the time ``expires_on`` is compared with (``time.time``).

    """

    def __init__(
        self,
        source: TokenSource | None,
        scope: str = GRAPH_SCOPE,
        *,
        margin: float = 300.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.scope = scope
        self.margin = margin
        self._wall_clock = wall_clock
        self._token: str | None = None
        self._refresh_at = float("-inf")
        self._lock: anyio.Lock | None = None
        #: How many times the credential was asked for a token.
        self.fetches = 0

    def __repr__(self) -> str:
        cached = "cached" if self._token is not None else "empty"
        return f"<TokenCache scope={self.scope!r} {cached}>"

    async def get(self) -> str | None:
        """The bearer token to send now, or None for no Authorization header.

        Raises:
            TypeError: the source returned something that is not a non-empty string.

        """
        source = self.source
        if source is None:
            return None
        if isinstance(source, str):
            return source
        if not _is_credential(source):
            result: Any = source()  # type: ignore[operator]
            if inspect.isawaitable(result):
                result = await result
            return _checked(result)
        if self._token is not None and self._wall_clock() < self._refresh_at:
            return self._token
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            # Another request may have refreshed it while this one waited.
            if self._token is None or self._wall_clock() >= self._refresh_at:
                await self._refresh(source)  # type: ignore[arg-type]
        assert self._token is not None
        return self._token

    async def _refresh(self, credential: TokenCredential) -> None:
        self.fetches += 1
        if inspect.iscoroutinefunction(credential.get_token):
            access: Any = await credential.get_token(self.scope)
        else:
            # A sync credential's refresh is a blocking HTTP request: not on the loop.
            access = await anyio.to_thread.run_sync(
                credential.get_token, self.scope, abandon_on_cancel=True
            )
            if inspect.isawaitable(access):  # a sync-looking method returning a coroutine
                access = await access
        token = _checked(getattr(access, "token", access))
        expires_on = getattr(access, "expires_on", None)
        if isinstance(expires_on, (int, float)) and not isinstance(expires_on, bool):
            self._refresh_at = float(expires_on) - self.margin
        else:
            self._refresh_at = float("-inf")  # no expiry given: ask again every time
        self._token = token


async def resolve_token(source: TokenSource | None, scope: str = GRAPH_SCOPE) -> str | None:
    """The bearer token to send now (uncached), or None for no Authorization header.

    Args:
        source: the token source.
        scope: the scope a credential is asked for.

    Returns:
        The token, or None when ``source`` is None.

    Raises:
        TypeError: the source returned something that is not a non-empty string.

    """
    return await TokenCache(source, scope, margin=float("inf")).get()
