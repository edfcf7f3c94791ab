"""Background work owned by an async context manager (the Client, the fake service).

Both run one long-lived task group for the life of their ``async with`` block. Leaving
the block cancels the group and waits for its tasks; the block's own exception is not
the group's business, so it goes on as raised, never wrapped in an ExceptionGroup.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

__all__ = ["start_background", "stop_background"]


async def start_background(
    task: Callable[[], Coroutine[Any, Any, object]], name: str
) -> anyio.abc.TaskGroup:
    """Open a task group outside any ``async with`` and start ``task`` in it."""
    tg = anyio.create_task_group()
    await tg.__aenter__()
    tg.start_soon(task, name=name)
    return tg


async def stop_background(tg: anyio.abc.TaskGroup | None) -> None:
    """Cancel the group's tasks and wait for them (a no-op for None)."""
    if tg is not None:
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
