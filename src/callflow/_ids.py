"""The public :class:`Invite`: the core's invite, with its ids made here, at the edge.

The core never makes an id (a replay must reproduce an invite exactly), so
:class:`callflow._core._invite.Invite` requires its clientContext and its invite id.
This thin subclass is what ``callflow.Invite`` names: it makes a fresh id for each one not
given, so ``callflow.Invite(call_id, participants)`` works as before, with no event loop.
The ids are a per-process random prefix and a counter (:func:`new_id`).
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ._core._invite import Invite as CoreInvite
from ._core._models import InvitationParticipantInfo
from ._kiota import KiotaParsable, from_sdk

__all__ = ["Invite", "new_id", "new_invite_id", "uuid4_text"]


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, without making the UUID object."""
    bits = bits & ~(0xC000 << 48) | (0x8000 << 48)  # RFC 4122's variant, 10xx
    bits = bits & ~(0xF000 << 64) | (4 << 76)  # version 4
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Ids:
    """This process's id source: one random prefix, drawn once, and a counter.

    Drawing 16 random bytes and building a ``uuid.UUID`` per id costs more than the rest
    of creating an invite. Instead each process draws its random part once (``secrets``,
    the OS's CSPRNG) and counts: the ids of one process differ by the counter, and two
    processes (fleet members, a restart, a forked worker: the prefix is drawn again in
    the child) share a prefix with odds of about 2**-74 per pair. The counter has 48
    bits; should it ever run out, a new prefix is drawn.
    """

    __slots__ = ("_count", "context_prefix", "invite_prefix")

    def __init__(self) -> None:
        self.draw()

    def draw(self) -> None:
        """Draw a new random prefix and restart the counter."""
        #: ``xxxxxxxx-xxxx-4xxx-Vxxx-``: a uuid4 whose last 12 digits are the counter.
        self.context_prefix = uuid4_text(secrets.randbits(128))[:24]
        #: 64 random bits, for invite ids.
        self.invite_prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def take(self) -> int:
        """The next number (drawing a new prefix when 48 bits are used up)."""
        n = next(self._count)
        if n >= 1 << 48:
            self.draw()
            n = next(self._count)
        return n


_IDS = _Ids()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's ids
    os.register_at_fork(after_in_child=_IDS.draw)


def new_id() -> str:
    """A fresh clientContext, unique across processes, shaped as a uuid4.

    ``xxxxxxxx-xxxx-4xxx-Vxxx-`` is this process's random prefix (74 random bits) and
    the last 12 hex digits its counter (see :class:`_Ids`).
    """
    ids = _IDS
    return f"{ids.context_prefix}{ids.take():012x}"


def new_invite_id() -> str:
    """A fresh invite id, unique across processes: ``<random prefix>-<counter>``."""
    ids = _IDS
    return f"{ids.invite_prefix}-{ids.take()}"


class Invite(CoreInvite):
    """One ``POST /communications/calls/{id}/participants/invite``, as a state machine.

    The sans-I/O invite: feed it :meth:`receive_response` and :meth:`receive_notification`
    and read its :attr:`state`.

    Args:
        call_id: the call to invite into.
        participants: ``InvitationParticipantInfo`` objects, spec-shaped mappings, or
            msgraph-sdk-python's ``InvitationParticipantInfo`` models (kiota's JSON
            serialiser reads them).
        client_context: the correlation key; a fresh unique one (uuid4-shaped) when not given.
        invite_id: this invite's own id, unique per invite; made when not given.

    Raises:
        InviteError: the request is invalid (see :meth:`Invite.from_request`); a kiota
            model is not an ``InvitationParticipantInfo``, or kiota's JSON serialiser is
            not installed (``pip install msgraph-sdk``).

    """

    __slots__ = ()

    def __init__(
        self,
        call_id: str,
        participants: Sequence[InvitationParticipantInfo | Mapping[str, Any] | KiotaParsable],
        *,
        client_context: str | None = None,
        invite_id: str | None = None,
    ) -> None:
        super().__init__(
            call_id,
            from_sdk(participants),
            client_context=new_id() if client_context is None else client_context,
            invite_id=new_invite_id() if invite_id is None else invite_id,
        )
