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

import numpy as np
import torch

from mdmtn.objectives.affinity import affinity_propagation, sklearn_affinity_propagation
from mdmtn.objectives.growl import similarity_matrix, weight_rows
from mdmtn.records.machine import machine_info
from mdmtn.records.probe import verified_checkpoints


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

    def keep(rec: dict) -> bool:
        c = rec["config"]
        return (
            c.get("method") == "wc_al"
            and c["k"][0] > 0
            and rec.get("status") == "ok"
            and (a.model is None or c["model"] == a.model)
            and (a.limit is None or seen.get(c["dataset"], 0) < a.limit)
        )

    def skipped(rec: dict, e: Exception) -> None:
        print(f"| {rec['key']} | skipped: {e} |")

    for rec, model, cfg in verified_checkpoints(a.dir, keep, skipped):
        c = rec["config"]
        seen[c["dataset"]] = seen.get(c["dataset"], 0) + 1
        for name, w in model.growl_weights():
            rows = weight_rows(w.detach(), cfg.switches.conv_rows)
            if cfg.growl.ap_rows == "nonzero":
                rows = rows[~(rows == 0).all(dim=1)]
            if len(rows) < a.min_rows:
                continue
            S = similarity_matrix(rows)
            t0 = time.perf_counter()
            reference = sklearn_affinity_propagation(
                S, cfg.growl.ap_preference, random_state=0, max_iter=cfg.growl.ap_max_iter
            )
            t1 = time.perf_counter()
            compiled = affinity_propagation(S, cfg.growl.ap_preference, random_state=0, max_iter=cfg.growl.ap_max_iter)
            t2 = time.perf_counter()
            n_iter = compiled[2]
            equal = all(np.array_equal(x, y) for x, y in zip(reference, compiled))
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
