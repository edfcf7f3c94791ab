"""A switchboard gives back what a burst of released invites held, and keeps its order."""

from __future__ import annotations

import gc
import tracemalloc

from callflow import Invite, Switchboard

PSTN = {"identity": {"phone": {"id": "+12345678901"}}}


def _filled(n: int, remember: int = 10_000) -> Switchboard:
    board = Switchboard(remember_released=remember)
    for i in range(n):
        board.add(Invite(f"call-{i % 50}", [PSTN], client_context=f"cc-{i}"), at=0.0)
    return board


def test_releasing_a_burst_of_invites_gives_their_memory_back() -> None:
    # (it remembers 100 released keys, so their late notifications read as late)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        board = _filled(5_000, remember=100)
        held = tracemalloc.get_traced_memory()[0] - base
        for invite in list(board):
            board.release(invite)
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()

    assert 0 == len(board)
    assert left < 0.02 * held, (left, held)


def test_the_invites_still_held_keep_their_order_after_the_indexes_shrink() -> None:
    board = _filled(2_000)
    kept = [i for n, i in enumerate(board) if n % 10 == 0]

    for n, invite in enumerate(list(board)):
        if n % 10:
            board.release(invite)

    assert kept == list(board)
    assert all(board.get(i.client_context) is i for i in kept)
    assert all(board.deadline_of(i) == 90.0 for i in kept)
