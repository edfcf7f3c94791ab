"""Log records carry the invite's ids as ``extra`` fields, for structured loggers."""

from __future__ import annotations

import logging

import pytest

import callflow
from callflow import Client, RetryPolicy
from callflow.testing import Declines, FakeGraph, Throttle, VirtualClock

pytestmark = pytest.mark.anyio

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
PHONE = "+12345678901"


async def test_every_record_about_an_invite_carries_its_ids(
    virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="callflow")
    async with FakeGraph(clock=virtual_clock) as fake, fake.http_client() as http:
        fake.script(PHONE, Declines())
        fake.fault(Throttle(retry_after=1))
        async with Client(http, clock=virtual_clock, retry=RetryPolicy(jitter=False)) as client:
            fake.deliver_to(client)
            handle = await client.invite(
                CALL_ID, [{"identity": {"phone": {"id": PHONE}}}], client_context="logged"
            )
            with pytest.raises(callflow.InviteFailed):
                await handle.wait()
    about = [r for r in caplog.records if getattr(r, "client_context", None) == "logged"]
    # The POST, the 429 and its retry, the answer, the end.
    assert len(about) >= 4
    for record in about:
        assert CALL_ID == record.call_id  # type: ignore[attr-defined]
        assert handle.invite.invite_id == record.invite_id  # type: ignore[attr-defined]
    [finished] = [r for r in about if "failed" in r.getMessage()]
    assert handle.invite.operation_id == finished.operation_id  # type: ignore[attr-defined]
    assert finished.operation_id is not None  # type: ignore[attr-defined]
