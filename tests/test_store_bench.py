"""The store benchmark runs at a tiny size, so it cannot rot (no timing is asserted)."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "store_bench.py"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_store_row_measures_redis_memory_and_the_round_trip(
    redis_url: str, backend: str
) -> None:
    row_store_append = runpy.run_path(str(BENCH))["row_store_append"]
    row = row_store_append(redis_url, n=20, repeats=1, backend=backend)
    figures = [row["callflow_us"], *row["baselines"].values()]
    assert all(isinstance(f, float) and math.isfinite(f) and f > 0 for f in figures), row
    assert isinstance(row["met"], bool)


def test_the_fleet_rows_run_at_a_tiny_size(redis_url: str) -> None:
    fleet_bench = runpy.run_path(str(BENCH.parent / "fleet_bench.py"))
    rows = [
        fleet_bench["row_store_notification"](redis_url, 10, 1, "asyncio"),
        fleet_bench["row_store_notification"](redis_url, 10, 1, "trio"),
        fleet_bench["row_fleet_throughput"](redis_url, 10),
    ]
    for row in rows:
        ours = row.get("callflow_us", row.get("callflow_per_s"))
        figures = [ours, *row["baselines"].values()]
        assert all(isinstance(f, float) and math.isfinite(f) and f > 0 for f in figures), row
        assert isinstance(row["met"], bool)
