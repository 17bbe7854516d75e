"""A hand-built paper-preset Fig. 2/3 sweep whose front is known by construction, and the finished
record it is built of, shared by the verdict tests (cells and front rules) and the section tests
(the page that draws the front)."""

import math
from dataclasses import replace

from mdmtn.core.config import make_config, profile_overrides
from mdmtn.core.paper import paper_preference_vectors
from mdmtn.records.schema import RunRecord


def record(cfg, acc, sr=0.0):
    """A finished record of ``cfg`` with both tasks at ``acc`` % and sparsity rate ``sr`` %."""
    return RunRecord.from_dict(
        dict(
            key=cfg.key(),
            status="ok",
            config=cfg.to_dict(),
            metrics=dict(test_acc=[acc / 100, acc / 100], test_acc_mean=acc / 100, SR=sr, CR=1.0, PS=1.0),
        )
    )


def paper_sweep(
    n_front, sr=53.0, front_acc=0.97, dense_acc=0.96, dataset="multimnist", profile="authors-2023", preset="paper"
):
    """One ``preset`` sweep of all 90 of the paper's vectors under ``profile``, seed 0: ``n_front``
    k0 > 0 runs on a convex trade-off (mutually non-dominated, all on the lower hull), the rest
    dominated; k0 = 0 runs at ``dense_acc``. Accuracies are fractions, ``sr`` a percentage."""
    out = []
    sparse_i = 0
    for k in paper_preference_vectors():
        cfg = make_config(dataset, "mdmtn", k, preset, 0, **profile_overrides(profile, dataset))
        if k[0] == 0:
            objs, acc, s = [0.0, 1.0 + len(out), 1.0], dense_acc, 0.0
        else:
            if sparse_i < n_front:  # on the circle arc: every point supported
                t = (sparse_i + 1) / (n_front + 1) * 1.5
                objs, acc, s = [0.5, 1 - math.cos(t), 1 - math.sin(t)], front_acc, sr
            else:
                objs, acc, s = [0.9, 5.0, 5.0], 0.5, 10.0
            sparse_i += 1
        r = record(cfg, 100 * acc, s)
        out.append(replace(r, metrics=replace(r.metrics, train_objectives=objs)))
    return out
