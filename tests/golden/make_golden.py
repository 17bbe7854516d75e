"""Golden numerics: smoke runs of the paper's method, MGDA-UB, STL and the joint solver on the
tests' synthetic data, reduced to the numbers a refactoring must not change.

``python tests/golden/make_golden.py OUT.json`` writes them from whatever ``mdmtn`` is importable
(run it with the source tree of the commit to pin, e.g. ``PYTHONPATH=<old checkout>``);
``tests/system/test_golden.py`` recomputes them with the current code and compares. One torch thread,
so float summation order is the same on every run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

CASES = {
    # name: (dataset, model, k, method)
    "wc_al_mdmtn_sparse": ("multimnist", "mdmtn", (0.01, 0.5, 0.49), "wc_al"),
    "wc_al_hps_dense": ("multimnist", "hps", (0.0, 0.5, 0.5), "wc_al"),
    "wc_al_hps_sparse_cifar": ("cifar10mnist", "hps", (0.01, 0.5, 0.49), "wc_al"),
    "mgda_hps": ("multimnist", "hps", (0.0, 0.5, 0.5), "mgda"),
    "stl": ("multimnist", "stl", (0.0, 0.5, 0.5), "stl"),
}


def _digest(rec: dict) -> dict:
    m = rec["metrics"]
    return dict(
        key=rec["key"],
        test_acc=m["test_acc"],
        test_loss=m["test_loss"],
        val_acc=m["val_acc"],
        SR=m.get("SR"),
        CR=m.get("CR"),
        PS=m.get("PS"),
        epochs=[
            dict(train_objectives=h.get("train_objectives"), val_loss=h.get("val_loss")) for h in rec.get("history", [])
        ],
    )


def compute(data_root: str | Path) -> dict:
    import torch

    from mdmtn.core.config import make_config
    from mdmtn.data import SplitsLoader
    from mdmtn.training.mt2o import joint_config, solve
    from mdmtn.training.runner import train

    torch.set_num_threads(1)
    load = SplitsLoader(str(data_root), allow_unverified_cifar=True)  # synthetic pickles
    out: dict = {}
    for name, (dataset, model, k, method) in CASES.items():
        cfg = make_config(dataset, model, k, "smoke", 0, method=method)
        out[name] = _digest(train(cfg, load(cfg), progress=False).record)
    jc = joint_config("multimnist", "hps", [(0.0, 0.3, 0.7), (0.0, 0.7, 0.3)], "smoke", 0, strategy="mt2o", period=2)
    rec = solve(jc, load(jc.runs[0]), progress=False).record
    out["joint_mt2o"] = dict(
        key=jc.key(),
        hv=[p["hv"] for p in rec["hv_curve"]],
        final=[dict(test_acc=r["test_acc"], test_loss=r["test_loss"], SR=r["SR"]) for r in rec["subproblems"]],
        transfers_accepted=rec["transfers"]["accepted"],
    )
    return out


def main(path: str) -> None:
    here = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(here))
    import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MDMTN_CACHE"] = str(Path(tmp) / "cache")
        root = synthetic.write_all(Path(tmp) / "raw")
        values = compute(root)
    Path(path).write_text(json.dumps(values, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
