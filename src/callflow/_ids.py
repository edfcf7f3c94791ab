"""The public :class:`Invite`: the core's invite, with its ids made here, at the edge.

The core never makes an id (a replay must reproduce an invite exactly), so
:class:`callflow._core._invite.Invite` requires its clientContext and its invite id.
This thin subclass is what ``callflow.Invite`` names: it makes a uuid4 for each one not
given, so ``callflow.Invite(call_id, participants)`` works as before, with no event loop.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._core._invite import Invite as CoreInvite
from ._core._models import InvitationParticipantInfo
from ._kiota import KiotaParsable, from_sdk

__all__ = ["Invite", "new_id", "new_invite_id"]

# An invite id is this process's random prefix and a counter: unique across processes
# (fleet members) like a uuid4, and a fifth of its cost on the create-an-invite path.
_PREFIX = uuid.uuid4().hex[:16]
_COUNT = itertools.count(1)


def new_id() -> str:
    """A fresh random id (a uuid4), for a clientContext."""
    return str(uuid.uuid4())


def new_invite_id() -> str:
    """A fresh invite id, unique across processes: ``<random prefix>-<counter>``."""
    return f"{_PREFIX}-{next(_COUNT)}"


class Invite(CoreInvite):
    """One ``POST /communications/calls/{id}/participants/invite``, as a state machine.

    The sans-I/O invite: feed it :meth:`receive_response` and :meth:`receive_notification`
    and read its :attr:`state`.

    Args:
        call_id: the call to invite into.
        participants: ``InvitationParticipantInfo`` objects, spec-shaped mappings, or
            msgraph-sdk-python's ``InvitationParticipantInfo`` models (kiota's JSON
            serialiser reads them).
        client_context: the correlation key; a uuid4 when not given.
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
