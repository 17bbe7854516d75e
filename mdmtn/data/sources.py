"""Raw MNIST / CIFAR-10 readers (through torchvision) and data-root resolution.

Everything here returns plain numpy arrays read from torchvision's ``.data`` / ``.targets``
(no per-sample PIL round trip). Every failure a user can fix is raised as :class:`DatasetError`
with one message that says what is missing or corrupt and how to fix it.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from torchvision import datasets

ENV_DATA = "MDMTN_DATA"
ENV_CACHE = "MDMTN_CACHE"

_FIX = (
    f"Set {ENV_DATA} (or pass root= / CLI --data-dir) to a folder holding MNIST/raw and "
    "cifar-10-batches-py in torchvision's layout (e.g. ../shared/data), or pass download=True "
    "(CLI --download) to fetch the official files into it."
)


class DatasetError(RuntimeError):
    """Raw data missing, unreadable or failing verification; the message says how to fix it."""


def resolve_root(root: str | os.PathLike | None) -> Path:
    """Data root: the argument, else ``$MDMTN_DATA``, else :class:`DatasetError`."""
    if root is None:
        root = os.environ.get(ENV_DATA) or None
    if root is None:
        raise DatasetError(f"No dataset root given. {_FIX}")
    return Path(root).expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """Cache folder: the argument, else ``$MDMTN_CACHE``, else ``~/.cache/mdmtn``."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "mdmtn"
    return Path(cache_dir).expanduser()


def read_mnist(root: Path, train: bool, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST split via ``torchvision.datasets.MNIST``.

    Returns images uint8 (N, 28, 28) and labels int64 (N,).
    """
    split = "train" if train else "t10k"
    try:
        ds = datasets.MNIST(str(root), train=train, download=download)
    except RuntimeError as e:
        raw = root / "MNIST" / "raw"
        raise DatasetError(
            f"MNIST ({split}) not found or unreadable under {raw} (needs {split}-images-idx3-ubyte and "
            f"{split}-labels-idx1-ubyte; torchvision said: {e}). {_FIX}"
        ) from e
    except Exception as e:  # malformed IDX header / truncated file / failed download
        raise DatasetError(f"MNIST ({split}) under {root / 'MNIST' / 'raw'} could not be read: {e!r}. {_FIX}") from e
    return ds.data.numpy(), ds.targets.numpy().astype(np.int64)


_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _CIFAR10(datasets.CIFAR10):
    """CIFAR10 whose md5 verification can be skipped by explicit opt-in only.

    With ``unverified=True`` the integrity check only requires the six batch files to exist (so
    ``download=True`` still fetches missing files) and ``batches.meta`` is read without its md5.
    Used for rebuilt pickles (same pixels/labels/order, different bytes), e.g. ../shared/data.
    """

    def __init__(self, root, train: bool, download: bool, unverified: bool):
        self._unverified = unverified  # must exist before super().__init__ calls _check_integrity
        super().__init__(root, train=train, download=download)

    def _check_integrity(self) -> bool:
        if not self._unverified:
            return super()._check_integrity()
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, f)) for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        if not self._unverified:
            return super()._load_meta()
        try:  # class names are cosmetic here; never fail on them in unverified mode
            with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        except (OSError, pickle.UnpicklingError, KeyError, EOFError):
            self.classes = list(_CIFAR_CLASSES)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def read_cifar10(
    root: Path, train: bool, download: bool = False, allow_unverified: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 split via a ``torchvision.datasets.CIFAR10`` subclass.

    Returns images uint8 (N, 32, 32, 3) (HWC, RGB) and labels int64 (N,).
    Plain torchvision md5 verification is kept unless ``allow_unverified`` is set.
    """
    folder = root / datasets.CIFAR10.base_folder
    names = [f for f, _ in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and not download:
        raise DatasetError(f"CIFAR-10 batch files not found under {folder} (missing: {', '.join(missing)}). {_FIX}")
    try:
        ds = _CIFAR10(str(root), train=train, download=download, unverified=allow_unverified)
    except RuntimeError as e:
        if not missing and not allow_unverified:
            raise DatasetError(
                f"CIFAR-10 files exist under {folder} but fail torchvision's md5 check (e.g. rebuilt pickles "
                "such as ../shared/data: same pixels, labels and order, different bytes). Pass "
                "allow_unverified_cifar=True (CLI --allow-unverified-cifar) to skip only that check, or "
                "replace them with the official files."
            ) from e
        raise DatasetError(f"CIFAR-10 under {folder} could not be loaded: {e}. {_FIX}") from e
    except Exception as e:  # unpickling errors, failed download, ...
        raise DatasetError(f"CIFAR-10 under {folder} could not be read: {e!r}. {_FIX}") from e
    return np.ascontiguousarray(ds.data), np.asarray(ds.targets, dtype=np.int64)
