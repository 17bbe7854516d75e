"""Train/val/test tensors, batching and the one entry point :func:`load_splits`.

Data is small (MultiMNIST 60k x 28 x 28, Cifar10Mnist 60k x 3 x 32 x 32), so every split is held
as one normalised float32 tensor and batches are tensor slices: no DataLoader, no per-sample
PIL transforms (the main cost of the original pipeline), and it can live on the GPU.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import torch

from mdmtn.core.config import DATASETS, ConfigError, RunConfig
from mdmtn.data import cifar10mnist, multimnist
from mdmtn.data.cache import load_or_build, sha256_arrays
from mdmtn.data.sources import (
    allow_unverified_mnist_default,
    mnist_files_verified,
    read_cifar10,
    read_mnist,
    resolve_cache_dir,
    resolve_root,
)

BUILD_VERSION = 1  # bump whenever a builder's output changes, to invalidate caches


@dataclass(frozen=True)
class TaskTensors:
    """One split: ``x`` float32 (N, C, H, W), normalised; ``y`` int64 (N, 2), one column per task."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, n: int | None) -> "TaskTensors":
        """First ``n`` samples (deterministic; the train/val order is already random). None keeps all."""
        return self if n is None else TaskTensors(self.x[:n], self.y[:n])

    def to(self, device: torch.device | str) -> "TaskTensors":
        return TaskTensors(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Splits:
    """train / val / test of one dataset plus its static description.

    ``info`` records provenance: cache file, whether it was a cache hit, input checksum, seeds.
    """

    name: str
    train: TaskTensors
    val: TaskTensors
    test: TaskTensors
    input_shape: tuple[int, int, int]
    task_names: tuple[str, str]
    num_classes: tuple[int, int] = (10, 10)
    info: dict = field(default_factory=dict, compare=False)

    def provenance(self) -> dict:
        """What a run record says about its data: sizes, the sha256 of the raw inputs, and
        (Cifar10Mnist) whether the CIFAR-10 files passed their md5 check."""
        d = dict(
            dataset=self.name,
            n_train=len(self.train),
            n_val=len(self.val),
            n_test=len(self.test),
            input_sha256=self.info.get("input_sha256"),
        )
        if "cifar_md5_verified" in self.info:
            d["cifar_md5_verified"] = self.info["cifar_md5_verified"]
        if self.info.get("mnist_sha256_verified") is False:  # records of the official files stay as they were
            d["mnist_sha256_verified"] = False
        return d

    def to(self, device: torch.device | str) -> "Splits":
        """The three splits' tensors on ``device`` (this object if they are there already)."""
        if self.train.x.device == torch.device(device):
            return self
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def subset(self, n_train: int | None = None, n_val: int | None = None, n_test: int | None = None) -> "Splits":
        """First n of each split (None keeps all), e.g. for CI-sized runs."""
        return replace(
            self, train=self.train.subset(n_train), val=self.val.subset(n_val), test=self.test.subset(n_test)
        )


def iterate_batches(
    t: TaskTensors, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x (B, C, H, W), y (B, 2)) batches; the last, incomplete batch is included.

    ``shuffle`` draws one permutation per call from ``generator`` (its device is used for
    ``randperm``; indices then move to the data's device) and gathers with ``index_select``.
    """
    n = len(t)
    if not shuffle:
        for s in range(0, n, batch_size):
            yield t.x[s : s + batch_size], t.y[s : s + batch_size]
        return
    dev = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(n, generator=generator, device=dev).to(t.x.device)
    for s in range(0, n, batch_size):
        idx = perm[s : s + batch_size]
        yield t.x.index_select(0, idx), t.y.index_select(0, idx)


def random_split_indices(n: int, n_first: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index order of ``torch.utils.data.random_split(range(n), [n_first, n - n_first],
    generator=torch.Generator().manual_seed(seed))``, without building Subset objects."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_first], perm[n_first:]


# Per dataset: train fraction of the random split (int(frac * N) train, rest val), normalisation,
# and whether build_seed affects the output (it is part of the cache key only then).
DATASET_SPECS = {
    "multimnist": dict(frac=0.83334, mean=(multimnist.MEAN,), std=(multimnist.STD,), module=multimnist, seeded=True),
    "cifar10mnist": dict(frac=0.8, mean=cifar10mnist.MEAN, std=cifar10mnist.STD, module=cifar10mnist, seeded=False),
}


def _read_raw(
    name: str, root, download: bool, allow_unverified_cifar: bool, allow_unverified_mnist: bool
) -> dict[str, np.ndarray]:
    raw = {}
    for split, train in (("train", True), ("test", False)):
        raw[f"mnist_{split}_x"], raw[f"mnist_{split}_y"] = read_mnist(root, train, download, allow_unverified_mnist)
        if name == "cifar10mnist":
            raw[f"cifar_{split}_x"], raw[f"cifar_{split}_y"] = read_cifar10(
                root, train, download, allow_unverified_cifar
            )
    return raw


def _normalise(x: np.ndarray | torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32, exactly ToTensor() then Normalize(mean, std)."""
    x = torch.as_tensor(x).to(torch.float32).div_(255)
    if mean is not None:
        x.sub_(torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)).div_(
            torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        )
    return x


def load_splits(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    allow_unverified_cifar: bool = False,
    allow_unverified_mnist: bool | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    split_seed: int = 42,
    build_seed: int = 0,
    full_train: bool = False,
    normalize: bool = True,
) -> Splits:
    """Build (or load from cache) a dataset and split it.

    name: "multimnist" (x (N, 1, 28, 28), tasks left/right digit) or "cifar10mnist"
    (x (N, 3, 32, 32), tasks CIFAR-10 class / MNIST digit); y is (N, 2) int64.
    root: raw data (torchvision layout), else $MDMTN_DATA. cache_dir: else $MDMTN_CACHE, else
    ~/.cache/mdmtn. build_seed draws the MultiMNIST partners (Cifar10Mnist is deterministic).
    The 60k / 50k training composites are split like ``random_split`` with
    ``Generator().manual_seed(split_seed)`` into int(0.83334 N) / int(0.8 N) train, rest val.
    full_train: train on the whole training set with an empty val split (MGDA setting).
    normalize=False gives ToTensor() only, range [0, 1] (MGDA on Cifar10Mnist).
    Raises DatasetError for missing / unverifiable raw data: MNIST files must be the official ones
    unless ``allow_unverified_mnist`` (None: the ``MDMTN_ALLOW_UNVERIFIED_MNIST`` opt-in), CIFAR-10
    files must pass torchvision's md5 check unless ``allow_unverified_cifar``.
    """
    if name not in DATASET_SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    spec = DATASET_SPECS[name]
    mod = spec["module"]
    root = resolve_root(root)
    allow_unverified_mnist = allow_unverified_mnist_default(allow_unverified_mnist)
    raw = _read_raw(name, root, download, allow_unverified_cifar, allow_unverified_mnist)

    params = {"build_seed": build_seed} if spec["seeded"] else {}
    key = sha256_arrays(raw, json.dumps({"dataset": name, "version": BUILD_VERSION, "params": params}, sort_keys=True))
    tag = "".join(f"-{k.split('_')[-1]}{v}" for k, v in params.items())
    path = resolve_cache_dir(cache_dir) / f"{name}-v{BUILD_VERSION}{tag}-{key[:16]}.pt"
    t0 = time.perf_counter()
    data, hit = load_or_build(path, key, lambda: mod.build(raw, build_seed))
    seconds = time.perf_counter() - t0

    mean, std = (spec["mean"], spec["std"]) if normalize else (None, None)
    train_x, train_y = torch.from_numpy(data["train_x"]), torch.from_numpy(data["train_y"])
    n = len(train_x)
    if full_train:
        tr, va = torch.arange(n), torch.arange(0)
    else:
        tr, va = random_split_indices(n, int(spec["frac"] * n), split_seed)

    def split(idx: torch.Tensor) -> TaskTensors:  # gather uint8 first, then normalise once
        return TaskTensors(_normalise(train_x.index_select(0, idx), mean, std), train_y.index_select(0, idx))

    test = TaskTensors(_normalise(data["test_x"], mean, std), torch.from_numpy(data["test_y"]))
    info = dict(
        cache_file=str(path),
        cache_hit=hit,
        input_sha256=key,
        build_or_load_s=seconds,
        split_seed=split_seed,
        build_seed=build_seed if spec["seeded"] else None,
        full_train=full_train,
        normalize=normalize,
    )
    if name == "cifar10mnist":
        info["cifar_md5_verified"] = not allow_unverified_cifar  # the opt-in is recorded with the data
    # what was checked, not what was allowed: the official files pass whether or not the opt-in was given
    info["mnist_sha256_verified"] = not allow_unverified_mnist or all(
        mnist_files_verified(root, t) for t in (True, False)
    )
    return Splits(
        name=name,
        train=split(tr),
        val=split(va),
        test=test,
        input_shape=mod.INPUT_SHAPE,
        task_names=mod.TASK_NAMES,
        info=info,
    )


class SplitsLoader:
    """``cfg -> Splits`` for run configs, loaded once per distinct data setting and cached.

    Picklable (the cache is not pickled), so a parallel sweep can hand it to its worker
    processes; each worker then loads from the checksummed on-disk cache once. The cache key is
    everything of a config that changes the tensors: dataset, full_train, normalize_inputs,
    split_seed and build_seed (MGDA-UB trains on other data than the paper's method).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        allow_unverified_cifar: bool = False,
        allow_unverified_mnist: bool | None = None,
        download: bool = False,
    ) -> None:
        self.root, self.allow_unverified_cifar, self.download = root, allow_unverified_cifar, download
        # resolved now, so worker processes use the parent's choice
        self.allow_unverified_mnist = allow_unverified_mnist_default(allow_unverified_mnist)
        self._cache: dict[tuple, Splits] = {}

    def __call__(self, cfg) -> Splits:
        opts = data_options(cfg)
        key = (cfg.dataset, *opts.values(), cfg.data.split_seed, cfg.data.build_seed)
        if key not in self._cache:
            self._cache[key] = load_splits(
                cfg.dataset,
                self.root,
                allow_unverified_cifar=self.allow_unverified_cifar,
                allow_unverified_mnist=self.allow_unverified_mnist,
                download=self.download,
                split_seed=cfg.data.split_seed,
                build_seed=cfg.data.build_seed,
                **opts,
            )
        return self._cache[key]

    def check(self, dataset: str) -> None:
        """Read and verify ``dataset``'s raw files now (the CIFAR-10 md5 check included), so a sweep
        that also trains another dataset fails before training anything rather than midway;
        :class:`DatasetError` says what is missing or unverified."""
        _read_raw(
            dataset, resolve_root(self.root), self.download, self.allow_unverified_cifar, self.allow_unverified_mnist
        )

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}


def data_options(cfg: "RunConfig") -> dict[str, bool]:
    """The :func:`load_splits` options a config trains on (full_train, normalize)."""
    return dict(full_train=cfg.data.full_train, normalize=cfg.data.normalize_inputs)


def prepare_splits(cfg: "RunConfig", splits: Splits | None, **load_kwargs: Any) -> Splits:
    """Load (or check) the data of a run (every method) and cut it to the config's sizes.

    Given ``splits`` must have been loaded with :func:`data_options` (checked when their
    ``info`` says how they were loaded); otherwise a :class:`ConfigError` says how to load them.
    """
    opts = data_options(cfg)
    if splits is None:
        splits = load_splits(
            cfg.dataset,
            load_kwargs.pop("data_dir", None),
            split_seed=cfg.data.split_seed,
            build_seed=cfg.data.build_seed,
            **opts,
            **load_kwargs,
        )
    for name, want in opts.items():
        have = splits.info.get(name)
        if have is not None and have != want:
            raise ConfigError(
                f"method {cfg.method!r} on {cfg.dataset} trains on data loaded with {name}={want}, but the given "
                f"splits have {name}={have}; load them with load_splits(..., "
                + ", ".join(f"{k}={v}" for k, v in opts.items())
                + ")"
            )
    return splits.subset(cfg.data.n_train, cfg.data.n_val, cfg.data.n_test)
