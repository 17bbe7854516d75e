"""Does the compiled Affinity Propagation (mdmtn.objectives.affinity) give scikit-learn's clusters on
trained models, and how much faster is it? For every sparse paper-preset run whose checkpoint is on
this machine (checkpoints are not committed; the records are), each GrOWL layer's rows as phase 2
clusters them (the non-zero rows, or all rows where the run's ``ap_rows`` is "all") go through both
implementations, interleaved; one row per layer: labels, exemplars and iteration count equal or
not, and both times.

    python benchmarks/affinity.py results/paper [--limit N] [--model mdmtn] [--min-rows 100]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import AffinityPropagation

from mdmtn.objectives.affinity import affinity_propagation
from mdmtn.objectives.growl import similarity_matrix, weight_rows
from mdmtn.records.checkpoint import CheckpointError
from mdmtn.records.machine import machine_info
from mdmtn.records.probe import load_verified_checkpoint
from mdmtn.records.record import load_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--limit", type=int, default=None, help="at most this many checkpoints per dataset")
    ap.add_argument("--model", choices=("hps", "mdmtn"), default=None, help="only this architecture's runs")
    ap.add_argument("--min-rows", type=int, default=2, help="skip layers with fewer rows to cluster")
    a = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # non-convergence warnings: both implementations give the same ones
    affinity_propagation(np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.3], [0.1, 0.3, 1.0]]), 0.5)  # compile first
    print(f"# {machine_info()['cpu_model']}, 1 thread; scikit-learn AffinityPropagation vs the compiled loop")
    print("| run | dataset / model | layer | rows | iterations | equal | s (scikit-learn) | s (compiled) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    seen: dict[str, int] = {}
    n_eq = n_all = 0
    t_sk = t_ours = 0.0
    for rec in load_records(a.dir):
        c = rec["config"]
        ckpt = Path(a.dir) / f"{rec['key']}.pt"
        if c.get("method") != "wc_al" or c["k"][0] <= 0 or rec.get("status") != "ok" or not ckpt.exists():
            continue
        if a.model is not None and c["model"] != a.model:
            continue
        if a.limit is not None and seen.get(c["dataset"], 0) >= a.limit:
            continue
        try:
            model, cfg, _ = load_verified_checkpoint(ckpt, rec)
        except CheckpointError as e:
            print(f"| {rec['key']} | skipped: {e} |")
            continue
        seen[c["dataset"]] = seen.get(c["dataset"], 0) + 1
        for name, w in model.growl_weights():
            rows = weight_rows(w.detach(), cfg.switches.conv_rows)
            if cfg.growl.ap_rows == "nonzero":
                rows = rows[~(rows == 0).all(dim=1)]
            if len(rows) < a.min_rows:
                continue
            S = similarity_matrix(rows)
            t0 = time.perf_counter()
            sk = AffinityPropagation(
                affinity="precomputed",
                preference=cfg.growl.ap_preference,
                random_state=0,
                max_iter=cfg.growl.ap_max_iter,
            ).fit(S)
            t1 = time.perf_counter()
            centers, labels, n_iter = affinity_propagation(
                S, cfg.growl.ap_preference, random_state=0, max_iter=cfg.growl.ap_max_iter
            )
            t2 = time.perf_counter()
            equal = (
                np.array_equal(sk.labels_, labels)
                and np.array_equal(np.asarray(sk.cluster_centers_indices_), centers)
                and sk.n_iter_ == n_iter
            )
            n_eq += equal
            n_all += 1
            t_sk += t1 - t0
            t_ours += t2 - t1
            print(
                f"| {rec['key']} | {c['dataset']} / {c['model']} | {name} | {len(rows)} | {n_iter} | "
                f"{'yes' if equal else '**no**'} | {t1 - t0:.2f} | {t2 - t1:.2f} | {(t2 - t1) / (t1 - t0):.2f} |"
            )
    ratio = t_ours / t_sk if t_sk else float("nan")
    print(
        f"\n{n_eq} of {n_all} layers clustered identically; {t_sk:.1f} s (scikit-learn) vs {t_ours:.1f} s "
        f"(compiled), ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
