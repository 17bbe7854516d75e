"""mean ± std over seeds (mdmtn.records.aggregate), checked against numpy on hand-made records."""

import math

import numpy as np
import pytest

from mdmtn.core.config import make_config
from mdmtn.records.aggregate import aggregate, format_table, group_records, mean_std, paper_result
from mdmtn.records.schema import RunRecord


def _rec(cfg, acc, wall, sr=0.0, status="ok"):
    return RunRecord.from_dict(
        dict(
            status=status,
            key=cfg.key(),
            config=cfg.to_dict(),
            wall_time_s=wall,
            metrics=dict(test_acc=list(acc), test_acc_mean=float(np.mean(acc)), SR=sr, CR=1.0, PS=1.0),
        )
    )


@pytest.fixture
def records():
    rng = np.random.default_rng(0)
    recs = []
    for method, model in (("mgda", "hps"), ("stl", "stl")):
        for seed in (0, 1, 2):
            cfg = make_config("multimnist", model, preset="quick", method=method, seed=seed)
            recs.append(_rec(cfg, rng.uniform(0.9, 1.0, 2), rng.uniform(50, 100)))
    # a variant of MGDA that must form its own group and be labelled by the field that differs
    for seed in (0, 1):
        cfg = make_config("multimnist", "hps", preset="quick", method="mgda", seed=seed, mgda_normalization="loss+")
        recs.append(_rec(cfg, rng.uniform(0.9, 1.0, 2), 60.0))
    recs.append(
        _rec(make_config("multimnist", "hps", preset="quick", method="mgda", seed=5), (0.1, 0.1), 1.0, status="error")
    )
    return recs


def test_mean_std_against_numpy(records):
    rows = aggregate(records)
    assert [(r["method"], r["n"]) for r in rows] == [("mgda", 3), ("stl", 3), ("mgda", 2)]
    for row, recs in zip(rows, [records[0:3], records[3:6], records[6:8]]):
        acc = np.array([r.metrics.test_acc for r in recs])
        for t, name in enumerate(("left", "right")):
            m, s = row["stats"][f"test_acc[{name}]"]
            assert m == pytest.approx(acc[:, t].mean()) and s == pytest.approx(acc[:, t].std(ddof=1))
        wall = np.array([r.wall_time_s for r in recs])
        assert row["stats"]["wall_time_s"] == pytest.approx((wall.mean(), wall.std(ddof=1)))
        assert row["stats"]["test_acc_mean"][0] == pytest.approx(acc.mean())
    assert rows[0]["seeds"] == [0, 1, 2]  # the failed seed-5 record is skipped
    assert rows[0]["differs"] == {"mgda_normalization": "none"} and rows[2]["differs"] == {
        "mgda_normalization": "loss+"
    }
    assert rows[1]["differs"] == {}


def test_single_seed_and_missing_values():
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([1.0, None, 3.0]) == pytest.approx((2.0, math.sqrt(2.0)))
    assert all(math.isnan(v) for v in mean_std([]))


def test_grouping_ignores_only_the_seed(records):
    groups = group_records(records[:6])
    assert [len(g) for g in groups] == [3, 3]
    assert {r.config["seed"] for r in groups[0]} == {0, 1, 2}


def test_table_and_paper_numbers(records):
    table = format_table(aggregate(records))
    assert len(table.splitlines()) == 5  # header, rule, three rows
    assert "mgda (mgda_normalization=loss+)" in table and "97.26 / 95.90 / 96.58" in table
    assert paper_result("cifar10mnist", "stl", "stl")["acc"] == (58.11, 97.07, 77.59)
    assert paper_result("multimnist", "wc_al", "mdmtn", [0.001, 0.2, 0.799])["SR"] == 57.26
    assert paper_result("multimnist", "mtan", "mtan") is None
