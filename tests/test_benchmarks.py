"""The benchmark script runs at a tiny size, so it cannot rot (no timing is asserted)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench.py"

#: The rows issue 15 asks for (ids), each present in every run.
ROW_IDS = {
    "create",
    "memory",
    "notification",
    "notification_extra",
    "transition",
    "roster",
    "expire",
    "client",
    "concurrency_asyncio",
    "concurrency_trio",
    "import",
    "redis",
    "fleet",
}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callflow_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One ``--quick`` run of the whole script: its JSON report and its printed table."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    bench = load_bench()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert 0 == bench.main(["--quick", "--json", str(out)])
    return json.loads(out.read_text()), printed.getvalue()


def measured(row: dict[str, Any]) -> bool:
    """False only for the speed-extra row when the extra is not installed."""
    return not (row["id"] == "notification_extra" and math.isnan(row["callflow"]))


def test_the_redis_rows_are_measured_on_a_real_server(
    quick_run: tuple[dict[str, Any], str], redis_url: str
) -> None:
    report, _ = quick_run
    rows = {row["id"]: row for row in report["rows"]}

    assert "not measured" not in rows["redis"]["note"]
    assert {"1", "3"} == set(rows["fleet"]["cpu"])
    for run in rows["fleet"]["cpu"].values():
        assert {"FakeGraph + driver", "bot 1"} <= set(run["cpu"]), run
        assert all(math.isfinite(s) and s >= 0 for s in run["cpu"].values()), run


def test_a_quick_run_has_every_row_of_the_issue(quick_run: tuple[dict[str, Any], str]) -> None:
    report, _ = quick_run

    assert ROW_IDS == {row["id"] for row in report["rows"]}


def test_every_measured_row_has_finite_positive_figures_and_a_verdict(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, _ = quick_run
    for row in report["rows"]:
        assert isinstance(row["met"], bool), row
        assert row["target"], row
        if not measured(row):
            assert not row["met"]
            assert "not installed" in row["note"]
            continue
        figures = [row["callflow"], *row["baselines"].values()]
        assert row["baselines"], row
        assert all(isinstance(f, float) and math.isfinite(f) and f > 0 for f in figures), row


def test_a_missed_target_says_by_how_much(quick_run: tuple[dict[str, Any], str]) -> None:
    report, _ = quick_run
    for row in report["rows"]:
        if not row["met"]:
            assert row["note"], row


def test_the_machine_is_stated_in_the_table_and_the_json(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, table = quick_run
    machine = report["machine"]

    assert isinstance(machine["cores"], int)
    assert machine["cpu"]
    assert machine["python"]
    assert f"{machine['cores']} cores, {machine['cpu']}, {machine['python']}" in table
    for row in report["rows"]:
        assert row["row"] in table


def test_the_pure_python_notification_row_ran_without_the_speed_extra(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    bench = load_bench()
    report, _ = quick_run
    pure = next(r for r in report["rows"] if r["id"] == "notification")

    child = bench._child(
        ["--measure", "notification", "--n", "5", "--repeats", "1"], block=[bench.SPEED_EXTRA]
    )

    assert "pure Python" in pure["row"]
    assert child["extra_loaded"] is False


def test_the_import_probe_reports_what_the_core_pulls_in() -> None:
    bench = load_bench()

    row = bench.row_import(1)

    assert "callflow" in row["row"]
    assert row["met"] == ("neither" in row["note"])


def test_the_dict_baseline_follows_the_same_table_as_callflow() -> None:
    bench = load_bench()
    machine = bench.DictMachine("call", [])

    assert "running" == machine.fire("accepted", "HTTP 200", 0.0)
    assert "completed" == machine.fire("operation_completed", "notification", 1.0)
    assert "completed" == machine.fire("accepted", "late", 2.0)
    assert 2 == len(machine.history)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_raw_baseline_completes_every_invite_with_its_roster(backend: str) -> None:
    bench = load_bench()

    assert 7 == anyio.run(bench.raw_invites, 7, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_callflow_side_completes_every_invite(backend: str) -> None:
    bench = load_bench()

    assert 7 == anyio.run(bench.callflow_invites, 7, backend=backend)


def test_the_readme_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    bench = load_bench()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.README_START}\nold table\n{bench.README_END}\n\nafter\n")

    bench.update_readme(readme, "| new | table |")

    assert (
        f"# x\n\n{bench.README_START}\n| new | table |\n{bench.README_END}\n\nafter\n"
        == readme.read_text()
    )
