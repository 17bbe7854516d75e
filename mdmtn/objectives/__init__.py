"""Layer 4, objectives: GrOWL (phase 1 prox, phase 2 tying), the Chebyshev / augmented-Lagrangian
scalarisation, Affinity Propagation, MGDA's min-norm solver, LSUV, sparsity metrics and Pareto tools."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "ChebyshevAL": "scalarization",
    "weighted_sum_loss": "scalarization",
    "min_norm_coefficients": "mgda",
    "affinity_propagation": "affinity",
    "lsuv_": "lsuv",
    "sparsity_metrics": "metrics",
    "accuracy": "metrics",
    "nondominated": "pareto",
    "hypervolume": "pareto",
    "sparsity_clusters": "pareto",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
