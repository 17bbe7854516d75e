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
ENV_ALLOW_UNVERIFIED_MNIST = "MDMTN_ALLOW_UNVERIFIED_MNIST"

# sha256 of the official MNIST IDX files, uncompressed (as torchvision leaves them in MNIST/raw).
# torchvision checks only the md5 of the .gz downloads and nothing of files already there, so a
# file of the right size with other bytes would otherwise be read as MNIST.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_FIX = (
    f"Set {ENV_DATA} (or pass root= / CLI --data-dir) to a folder holding MNIST/raw and "
    "cifar-10-batches-py in torchvision's layout (e.g. ../shared/data), or pass download=True "
    "(CLI --download) to fetch the official files into it."
)


class DatasetError(RuntimeError):
    """Raw data missing, unreadable or failing verification; the message says how to fix it."""


class UnverifiedDataError(DatasetError):
    """CIFAR-10 or MNIST files that are present and readable but are not the official files
    (CIFAR-10: torchvision's md5 check; MNIST: :data:`MNIST_SHA256`)."""


def allow_unverified_mnist_default(value: bool | None) -> bool:
    """``value``, or when None the ``MDMTN_ALLOW_UNVERIFIED_MNIST`` opt-in (``1``/``true``/``yes``;
    ``0``/``false``/``no``/empty = off; anything else is a :class:`DatasetError`)."""
    from mdmtn.core.config import env_flag

    return bool(value) if value is not None else env_flag(ENV_ALLOW_UNVERIFIED_MNIST, DatasetError)


def mnist_files_verified(root: Path, train: bool) -> bool:
    """Whether the split's two raw MNIST files under ``root/MNIST/raw`` are the official ones
    (sha256, :data:`MNIST_SHA256`). A missing file counts as not verified."""
    import hashlib

    split = "train" if train else "t10k"
    for name in (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"):
        path = root / "MNIST" / "raw" / name
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        except OSError:
            return False
        if h.hexdigest() != MNIST_SHA256[name]:
            return False
    return True


def data_root(root: str | os.PathLike | None = None) -> str | None:
    """The one reading of where the raw data live: ``root`` if given, else ``$MDMTN_DATA`` (empty
    counts as unset), else None."""
    if root is not None and str(root) != "":
        return str(root)
    return os.environ.get(ENV_DATA) or None


def resolve_root(root: str | os.PathLike | None) -> Path:
    """Data root: the argument, else ``$MDMTN_DATA``, else :class:`DatasetError`."""
    root = data_root(root)
    if root is None:
        raise DatasetError(f"No dataset root given. {_FIX}")
    return Path(root).expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """Cache folder: the argument, else ``$MDMTN_CACHE``, else ``~/.cache/mdmtn``."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "mdmtn"
    return Path(cache_dir).expanduser()


def read_mnist(
    root: Path, train: bool, download: bool = False, allow_unverified: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST split via ``torchvision.datasets.MNIST``.

    Returns images uint8 (N, 28, 28) and labels int64 (N,) in 0..9. The two files must be the
    official ones (sha256, :data:`MNIST_SHA256`) unless ``allow_unverified`` is set
    (:class:`UnverifiedDataError` otherwise); labels outside 0..9 are refused either way.
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
    if not allow_unverified and not mnist_files_verified(root, train):
        raise UnverifiedDataError(
            f"MNIST ({split}) files under {root / 'MNIST' / 'raw'} are not the official ones (their sha256 differs "
            f"from the published MNIST files). Pass allow_unverified_mnist=True (CLI --allow-unverified-mnist, or "
            f"{ENV_ALLOW_UNVERIFIED_MNIST}=1) to use them anyway (the run record then says so), or replace them "
            "with the official files."
        )
    x, y = ds.data.numpy(), ds.targets.numpy().astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() > 9):
        bad = int(((y < 0) | (y > 9)).sum())
        raise DatasetError(
            f"MNIST ({split}) labels under {root / 'MNIST' / 'raw'} are not digits: {bad} of {len(y)} "
            f"lie outside 0..9 (e.g. {int(y[(y < 0) | (y > 9)][0])}); replace the labels file. {_FIX}"
        )
    if len(x) != len(y):
        raise DatasetError(
            f"MNIST ({split}) under {root / 'MNIST' / 'raw'} has {len(x)} images but {len(y)} labels; "
            f"the files do not belong together. {_FIX}"
        )
    return x, y


# What CIFAR-10's python batches hold: dicts, lists, strings, numbers and uint8 numpy arrays. A
# pickle may name any callable; these are the only ones a batch needs, so nothing else is run.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only plain "
                "containers, bytes, numbers and numpy arrays"
            )
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, list]:
    """(data uint8 (N, 3072), labels) of one CIFAR-10 python batch, unpickled with only the
    globals such a batch needs (:data:`_CIFAR_GLOBALS`)."""
    try:
        with open(path, "rb") as f:
            entry = _BatchUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(
            f"CIFAR-10 batch {path} is not a CIFAR-10 python batch ({e}); replace it with the official file. {_FIX}"
        ) from None
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get("labels", entry.get("fine_labels")) if isinstance(entry, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or not isinstance(labels, list)
        or not all(isinstance(v, int) and 0 <= v < 10 for v in labels)
    ):
        raise DatasetError(
            f"CIFAR-10 batch {path} does not hold uint8 'data' (N, 3072) and 'labels' in 0..9; "
            f"replace it with the official file. {_FIX}"
        )
    if len(labels) != len(data):
        raise DatasetError(
            f"CIFAR-10 batch {path} has {len(data)} images but {len(labels)} labels; replace it "
            f"with the official file. {_FIX}"
        )
    return data, labels


def read_cifar10(
    root: Path, train: bool, download: bool = False, allow_unverified: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 split from torchvision's python batches.

    Returns images uint8 (N, 32, 32, 3) (HWC, RGB) and labels int64 (N,), as
    ``torchvision.datasets.CIFAR10``'s ``.data`` / ``.targets``. Each file must pass torchvision's
    md5 check unless ``allow_unverified`` is set; every batch is unpickled by a restricted
    unpickler either way, so a crafted file cannot run code.
    """
    from torchvision.datasets.utils import check_integrity

    base = datasets.CIFAR10
    folder = root / base.base_folder
    files = base.train_list if train else base.test_list
    names = [f for f, _ in base.train_list + base.test_list]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and download:
        try:  # torchvision downloads and checks the official archive (md5) before extracting it
            base(str(root), train=train, download=True)
        except Exception as e:  # failed download, ...
            raise DatasetError(f"CIFAR-10 could not be downloaded into {folder}: {e!r}. {_FIX}") from e
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 batch files not found under {folder} (missing: {', '.join(missing)}). {_FIX}")
    if not allow_unverified:
        bad = [n for n, md5 in files if not check_integrity(str(folder / n), md5)]
        if bad:
            raise UnverifiedDataError(
                f"CIFAR-10 files exist under {folder} but fail torchvision's md5 check ({', '.join(bad)}; e.g. "
                "rebuilt pickles: same pixels, labels and order, different bytes). Pass "
                "allow_unverified_cifar=True (CLI --allow-unverified-cifar) to skip only that check (the run "
                "record then says so), or replace them with the official files."
            )
    parts = [_read_batch(folder / n) for n, _ in files]
    data = np.vstack([d for d, _ in parts]).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
    labels = np.asarray([v for _, lab in parts for v in lab], dtype=np.int64)
    return np.ascontiguousarray(data), labels
