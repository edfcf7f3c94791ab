"""Bearer tokens for Graph: a string, a callable, or an azure-identity credential.

The token is fetched per request (so a provider can refresh it) and never logged,
repr'd or put in an exception message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["TokenSource", "TokenCredential", "GRAPH_SCOPE", "resolve_token"]

#: The scope an azure-identity credential is asked for.
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@runtime_checkable
class TokenCredential(Protocol):
    """What callflow needs of an azure-identity credential (sync or async)."""

    def get_token(self, *scopes: str) -> Any:
        """Return an ``AccessToken`` (or an awaitable of one) for ``scopes``."""
        ...


TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]] | TokenCredential


async def resolve_token(source: TokenSource | None) -> str | None:
    """The bearer token to send now, or None for no Authorization header.

    Raises:
        TypeError: the source returned something that is not a non-empty string.

    """
    if source is None:
        return None
    if isinstance(source, str):
        return source
    if isinstance(source, TokenCredential) and not callable(source):
        result: Any = source.get_token(GRAPH_SCOPE)
        if inspect.isawaitable(result):
            result = await result
        result = getattr(result, "token", result)
    else:
        result = source()
        if inspect.isawaitable(result):
            result = await result
    if not isinstance(result, str) or not result:
        raise TypeError(f"the token provider returned {type(result).__name__}, not a string")
    return result
