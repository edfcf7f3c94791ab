"""One base for callflow's string enums."""

from __future__ import annotations

import enum

__all__ = ["StrEnum"]


class StrEnum(str, enum.Enum):
    """A string enum that prints as its value (``str(InviteState.running) == "running"``)."""

    def __str__(self) -> str:
        return str(self.value)
