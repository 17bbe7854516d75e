"""Layer 6, training: the epoch loop, Algorithm 1, the baselines, MT2O-v, stacked runs, compression."""

from mdmtn.training.compress import CompressedMultiTask
from mdmtn.training.engine import seed_everything
from mdmtn.training.finish import Trained, TrainResult
from mdmtn.training.loop import TrainingDiverged, evaluate
from mdmtn.training.runner import TRAINERS, train
from mdmtn.training.stacked import train_stacked
from mdmtn.training.trainer import train_algorithm1

__all__ = [
    "train",
    "train_algorithm1",
    "evaluate",
    "seed_everything",
    "TrainingDiverged",
    "TrainResult",
    "Trained",
    "TRAINERS",
    "train_stacked",
    "CompressedMultiTask",
]
