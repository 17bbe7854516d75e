"""Layer 7, experiments: resumable sweeps (processes, claim files, Dask), joint runs, checkpoint restore."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "run_sweep": "sweep",
    "sweep_configs": "sweep",
    "run_sweep_dask": "cluster",
    "Claims": "claims",
    "run_joint": "joint_runs",
    "restore_checkpoint": "restore",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
