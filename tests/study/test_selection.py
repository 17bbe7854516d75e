"""mdmtn.study.selection: which runs a section reads, said in one line before it shows them."""

from mdmtn.core.config import make_config, profile_overrides
from mdmtn.records.schema import RunRecord
from mdmtn.study.selection import is_default, selection_line


def _rec(cfg):
    return RunRecord(status="ok", key=cfg.key(), config=cfg.to_dict())


def test_the_line_counts_presets_profiles_and_seeds_as_built():
    k = (0.001, 0.2, 0.799)
    lib = [_rec(make_config("multimnist", "mdmtn", k, "paper", s)) for s in (0, 1)]
    a23 = _rec(make_config("multimnist", "mdmtn", k, "paper", 2, **profile_overrides("authors-2023", "multimnist")))
    variant = _rec(make_config("multimnist", "mdmtn", k, "quick", 0, lr=0.5))
    stl = _rec(make_config("multimnist", "stl", (0.0, 0.5, 0.5), "paper", 0, method="stl"))
    line = selection_line("This table", [*lib, a23, variant, stl])
    assert line == (
        "*This table: 5 run records read; preset paper, quick; profile library (2), authors-2023 (1), "
        "every profile (1), variant (1); seeds 0, 1, 2.*"
    )
    assert is_default(a23, "authors-2023") and not is_default(a23) and not is_default(variant)
    assert selection_line("Fig. 7", []) == "*Fig. 7: no run records yet.*"
    assert selection_line("Fig. 7", lib[:1]).endswith("profile library (1); seed 0.*")


def test_best_run_is_the_highest_mean_accuracy_on_the_split_asked():
    from mdmtn.records.schema import Metrics, RunRecord
    from mdmtn.study.selection import best_run

    recs = [
        RunRecord(status="ok", key=str(i), config={}, metrics=Metrics(test_acc=[a], test_acc_mean=a, val_acc_mean=b))
        for i, (a, b) in enumerate([(0.5, 0.9), (0.7, 0.1)])
    ]
    assert best_run(recs).metrics.test_acc_mean == 0.7
    assert best_run(recs, "val").metrics.val_acc_mean == 0.9
    assert best_run([]) is None
