"""Layer 6, training: the epoch engine, Algorithm 1, the baselines, MT2O-v, stacked runs, compression."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {
    "train": "runner",
    "train_algorithm1": "trainer",
    "evaluate": "engine",
    "seed_everything": "engine",
    "TrainingDiverged": "engine",
    "TrainResult": "engine",
    "train_stacked": "stacked",
    "CompressedMultiTask": "compress",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
