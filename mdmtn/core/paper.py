"""What the paper prints, in one place: Tables 1-2, its 90 preference vectors and what it says about
its fronts (Figs. 2-3), so that every other module reads the paper from one source."""

from __future__ import annotations

from typing import Any


def paper_preference_vectors() -> list[tuple[float, float, float]]:
    """The paper's 90 preference vectors (k0, k1, k2) in the authors' file order (book appendix).

    k0 = 0: 19 vectors; k0 = 0.1: 17; k0 ∈ {0.01, 0.001, 0.0001}: 18 each. Values are rounded
    to 10 decimals so that k sums to 1 exactly as written in the authors' files.
    """

    def r(v: float) -> float:
        return round(v, 10)

    out: list[tuple[float, float, float]] = []
    a0 = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.55, 0.45, 0.65, 0.35, 0.75, 0.25, 0.85, 0.15, 0.95, 0.05]
    out += [(0.0, a, r(1 - a)) for a in a0]
    a1 = [0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85, 0.05]
    out += [(0.1, a, r(0.9 - a)) for a in a1]
    for k0 in (0.01, 0.001, 0.0001):
        for j in range(1, 10):
            out.append((k0, r(j / 10 - k0), r(1 - j / 10)))
            out.append((k0, r(1 - j / 10), r(j / 10 - k0)))
    return out


# Paper Tables 1-2 (seed text, the book appendix): test accuracy in % (task 1, task 2, mean) and (SR %, CR, PS).
# Keys (dataset, method, model[, k]); "wc_al" rows are the paper's own method at the quoted k.
PAPER_RESULTS: dict[tuple, dict[str, Any]] = {
    ("multimnist", "mgda", "hps"): dict(acc=(97.26, 95.90, 96.580), SR=0.0, CR=1.0, PS=1.0),
    ("multimnist", "wc_al", "hps", (0.0, 0.4, 0.6)): dict(acc=(96.74, 95.53, 96.134), SR=0.0, CR=1.0, PS=1.0),
    ("multimnist", "wc_al", "hps", (1e-4, 0.5, 0.4999)): dict(acc=(96.78, 96.14, 96.46), SR=11.83, CR=1.13, PS=1.0),
    ("multimnist", "mgda", "mdmtn"): dict(acc=(96.88, 96.63, 96.755), SR=0.0, CR=1.0, PS=1.0),
    ("multimnist", "wc_al", "mdmtn", (0.0, 0.35, 0.65)): dict(acc=(97.10, 96.39, 96.744), SR=0.0, CR=1.0, PS=1.0),
    ("multimnist", "wc_al", "mdmtn", (1e-3, 0.2, 0.799)): dict(acc=(97.29, 96.40, 96.845), SR=57.26, CR=2.7, PS=1.15),
    ("multimnist", "stl", "stl"): dict(acc=(97.23, 95.90, 96.565), SR=0.0, CR=1.0, PS=1.0),
    ("cifar10mnist", "mgda", "hps"): dict(acc=(45.75, 96.78, 71.265), SR=0.0, CR=1.0, PS=1.0),
    ("cifar10mnist", "wc_al", "hps", (0.0, 0.5, 0.5)): dict(acc=(54.00, 95.14, 74.570), SR=0.0, CR=1.0, PS=1.0),
    ("cifar10mnist", "wc_al", "hps", (1e-1, 0.6, 0.3)): dict(acc=(56.64, 94.81, 75.724), SR=13.03, CR=1.25, PS=1.10),
    ("cifar10mnist", "mgda", "mdmtn"): dict(acc=(58.17, 97.04, 77.605), SR=0.0, CR=1.0, PS=1.0),
    ("cifar10mnist", "wc_al", "mdmtn", (0.0, 0.55, 0.45)): dict(acc=(59.25, 95.19, 77.22), SR=0.0, CR=1.0, PS=1.0),
    ("cifar10mnist", "wc_al", "mdmtn", (1e-2, 0.8, 0.19)): dict(acc=(61.05, 94.26, 77.654), SR=29.31, CR=1.94, PS=1.37),
    ("cifar10mnist", "stl", "stl"): dict(acc=(58.11, 97.07, 77.59), SR=0.0, CR=1.0, PS=1.0),
}
