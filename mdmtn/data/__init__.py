"""Datasets: MultiMNIST and Cifar10Mnist as in-memory, normalised tensors (as the paper describes them).

    splits = load_splits("multimnist", root)      # or "cifar10mnist"; root else $MDMTN_DATA
    for x, y in iterate_batches(splits.train, 256, shuffle=True, generator=g): ...

x is float32 (N, C, H, W), y int64 (N, 2) with one column per task. Composites are built once
from the torchvision raw files and cached (checksummed) under $MDMTN_CACHE or ~/.cache/mdmtn.
"""

from mdmtn.data.sources import DatasetError, UnverifiedDataError
from mdmtn.data.splits import (
    DATASETS,
    Splits,
    SplitsLoader,
    TaskTensors,
    data_options,
    iterate_batches,
    load_splits,
    prepare_splits,
    random_split_indices,
)

__all__ = [
    "DATASETS",
    "DatasetError",
    "Splits",
    "SplitsLoader",
    "TaskTensors",
    "UnverifiedDataError",
    "data_options",
    "iterate_batches",
    "load_splits",
    "prepare_splits",
    "random_split_indices",
]
