"""Numerics are pinned: smoke runs of the paper's method, MGDA-UB, STL and the joint solver give
the metrics, per-epoch losses and record keys recorded from commit b05fe4a (the code that trained
the committed records), by ``tests/golden/make_golden.py`` run on that commit's source tree.

Tolerances allow a different CPU's kernels (AVX2 vs AVX-512 summation order); a change in the
algorithm moves these numbers by far more."""

import json
import math
from pathlib import Path

import pytest

sys_path = Path(__file__).resolve().parents[1] / "golden"
GOLDEN = json.loads((sys_path / "golden-b05fe4a.json").read_text())


@pytest.fixture(scope="module")
def current(synthetic_data_root, tmp_path_factory, monkeypatch_module):
    import sys

    import torch

    sys.path.insert(0, str(sys_path))
    import make_golden

    monkeypatch_module.setenv("MDMTN_CACHE", str(tmp_path_factory.mktemp("golden-cache")))
    threads = torch.get_num_threads()
    try:
        return make_golden.compute(synthetic_data_root)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(b):
        assert math.isnan(a), f"{path}: {a} != golden nan"
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), (
            f"{path}: {a} != golden {b}"
        )
    else:
        assert a == b, f"{path}: {a!r} != golden {b!r}"


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_numerics_and_keys_match_the_golden_commit(current, case):
    _close(current[case], GOLDEN[case], case)
