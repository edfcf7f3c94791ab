"""Testing support: a virtual clock, a fake Graph calls service, record and replay.

Like ``stamina.set_testing`` and ``structlog.testing``, this is part of the library: bot
developers test their own calling logic against it, deterministically, with no tenant
and no sleeping.
"""

from ._clock import VirtualClock

__all__ = ["VirtualClock"]
