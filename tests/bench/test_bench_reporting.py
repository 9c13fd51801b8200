"""bench/ reports figures next to their targets and the machine they ran on; a slow run still exits 0."""

import itertools
import runpy
import subprocess
import sys

import pytest

from stack.mockrun import ROOT

BENCH = ROOT / "bench"


@pytest.fixture
def bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_plan_throughput_on_a_slow_machine_reports_the_missed_targets_and_exits_0(bench_on_path, monkeypatch, capsys):
    script = runpy.run_path(str(BENCH / "plan_throughput.py"), run_name="bench")
    clock = itertools.count(step=30.0)  # every timed section takes 30 s: far below both targets
    monkeypatch.setattr(script["time"], "perf_counter", lambda: next(clock))
    monkeypatch.setitem(script["main"].__globals__, "import_time_ms", lambda: 450.0)
    monkeypatch.setattr(sys, "argv", ["plan_throughput.py", "--repeat", "1"])
    assert script["main"]() == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    assert "(target < 1 s: not met on this run)" in out
    assert "import sizing: 450.0 ms (target < 100 ms: not met on this run)" in out


@pytest.mark.parametrize("name", ["plan_throughput.py", "throughput_speed.py", "traffic_plan_speed.py"])
def test_each_timing_bench_prints_the_machine_first(name):
    done = subprocess.run(
        [sys.executable, str(BENCH / name), "--repeat", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("machine: ") and " cores, " in first and "Python " in first and "load average " in first
