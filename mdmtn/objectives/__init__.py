"""Layer 4, objectives: GrOWL (phase 1 prox, phase 2 tying), the Chebyshev / augmented-Lagrangian
scalarisation, Affinity Propagation, MGDA's min-norm solver, LSUV, sparsity metrics and Pareto tools."""

from mdmtn.objectives.affinity import affinity_propagation
from mdmtn.objectives.lsuv import lsuv_
from mdmtn.objectives.metrics import accuracy, sparsity_metrics
from mdmtn.objectives.mgda import min_norm_coefficients
from mdmtn.objectives.pareto import hypervolume, nondominated, sparsity_clusters
from mdmtn.objectives.scalarization import ChebyshevAL, weighted_sum_loss

__all__ = [
    "ChebyshevAL",
    "weighted_sum_loss",
    "min_norm_coefficients",
    "affinity_propagation",
    "lsuv_",
    "sparsity_metrics",
    "accuracy",
    "nondominated",
    "hypervolume",
    "sparsity_clusters",
]
