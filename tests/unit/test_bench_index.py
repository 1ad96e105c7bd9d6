"""bench/index.py reports each tool's own peak memory: on Linux a child's ru_maxrss starts
at its parent's peak (exec records the high-water mark of the address space it leaves), so
a tool started straight from a bench holding a big corpus would report the bench's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MiB = 2**20


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # (its own helpers: bench/_install.py)
    try:
        spec = importlib.util.spec_from_file_location("bench_index", BENCH / "index.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_index"] = module  # (its dataclasses look their module up there)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_a_tool_reports_its_own_peak_not_the_bench_s(bench: ModuleType) -> None:
    ballast = bytearray(256 * MiB)
    ballast[::4096] = b"x" * len(ballast[::4096])  # resident, not just reserved
    seconds, out, peak = bench.run("small", [sys.executable, "-c", "print('hi')"])
    assert out == "hi\n" and 0 < seconds < 60
    assert peak < 64 * MiB  # a bare Python: 10-20 MiB, not the 256 MiB above
    grow = "b = bytearray(192 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    assert bench.run("big", [sys.executable, "-c", grow])[2] > 192 * MiB
    del ballast


def test_a_failing_tool_is_reported_with_its_exit_code(bench: ModuleType) -> None:
    with pytest.raises(bench.ToolFailed, match=r"exit 3"):
        bench.run("three", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(bench.ToolFailed, match=r"exit 127"):
        bench.run("missing", ["/nonexistent/tool"])


def test_a_timeout_and_a_helper_that_wrote_nothing_are_told_apart(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "TIMEOUT", 1)
    with pytest.raises(bench.ToolFailed, match=r"timed out after 1 s"):
        bench.run("slow", [sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(bench, "TIMEOUT", 600)
    # a tool that kills its process group (the helper too): how the helper ended is said,
    # and the space left (a full disk also loses the result and the log)
    kill_all = "import os, signal; os.killpg(0, signal.SIGKILL)"
    with pytest.raises(bench.ToolFailed, match=r"wrote no result \(exit -9, [0-9.]+ GB free"):
        bench.run("group", [sys.executable, "-c", kill_all])


def test_the_growth_table_takes_an_index_work_below_measure(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 3,000 wheels an incremental run's index work measures 0.000 s: its growth
    exponent is n/a, and the table (which ended the bench in a ZeroDivisionError) goes on
    to every tool and the goal."""

    def result(wheels: int, full: float, work: float) -> Any:
        rows = {
            "wheelhouse index": bench.Row(
                name="wheelhouse index",
                full=[full],
                incremental=[0.1],
                memory=[25 * MiB],
                memory_incremental=[(20 + wheels // 300_000) * MiB],
            ),
            "  (index work only)": bench.Row(
                name="  (index work only)", full=[full], incremental=[work]
            ),
        }
        return bench.Result(wheels=wheels, rows=rows, startup=0.05, listing=0.01)

    bench.report_growth([result(3000, 0.4, 0.0), result(300_000, 40.0, 0.2)])
    out = capsys.readouterr().out
    assert "wheelhouse index         1.000        0.000" in out
    assert "(index work only)" in out and "n/a" in out
    assert "goal: wheelhouse full growth <= 1.05: PASS" in out
    assert "25 -> 25, 20 -> 21" in out  # (each run's peak memory, full and incremental)
