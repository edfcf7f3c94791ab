"""The benchmark script runs at a tiny size, so it cannot rot (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callflow_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_every_row_as_json_and_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"

    assert 0 == load_bench().main(["--quick", "--json", str(out)])

    report = json.loads(out.read_text())
    names = [row["row"] for row in report["rows"]]
    assert len(names) >= 5
    for row in report["rows"]:
        figures = [v for k, v in row.items() if k.startswith(("callflow_", "wall_", "invites_"))]
        figures += list(row.get("baselines", {}).values())
        assert figures, row
        assert all(isinstance(f, float) and math.isfinite(f) and f > 0 for f in figures), row
        assert isinstance(row["met"], bool)
    table = capsys.readouterr().out
    for name in names:
        assert name in table


def test_the_dict_baseline_follows_the_same_table_as_callflow() -> None:
    bench = load_bench()
    machine = bench.DictMachine("call", [])

    assert "running" == machine.fire("accepted", "HTTP 200", 0.0)
    assert "completed" == machine.fire("operation_completed", "notification", 1.0)
    assert "completed" == machine.fire("accepted", "late", 2.0)
    assert 2 == len(machine.history)
