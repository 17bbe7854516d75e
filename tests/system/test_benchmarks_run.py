"""Every benchmark script imports what it uses from the library and parses its options
(`--help`), so a library change that breaks a benchmark fails here rather than on the GPU
machine that a session gets for 15 minutes."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert {"gpu_check.py", "sweep.py", "train_throughput.py"} <= {p.name for p in BENCH}


@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_benchmark_imports_and_parses_its_options(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
