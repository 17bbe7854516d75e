"""Layer 6, training: the epoch engine, Algorithm 1, the baselines, MT2O-v, stacked runs, compression."""

from mdmtn.training.compress import CompressedMultiTask
from mdmtn.training.engine import TrainingDiverged, TrainResult, evaluate, seed_everything
from mdmtn.training.runner import train
from mdmtn.training.stacked import train_stacked
from mdmtn.training.trainer import train_algorithm1

__all__ = [
    "train",
    "train_algorithm1",
    "evaluate",
    "seed_everything",
    "TrainingDiverged",
    "TrainResult",
    "train_stacked",
    "CompressedMultiTask",
]
