"""Layer 7, experiments: resumable sweeps (processes, lock files, Dask), joint runs, checkpoint restore."""

from mdmtn.experiments.cluster import run_sweep_dask
from mdmtn.experiments.joint_runs import run_joint
from mdmtn.experiments.locks import Locks
from mdmtn.experiments.restore import restore_checkpoint
from mdmtn.experiments.sweep import run_sweep, sweep_configs

__all__ = ["run_sweep", "sweep_configs", "run_sweep_dask", "Locks", "run_joint", "restore_checkpoint"]
