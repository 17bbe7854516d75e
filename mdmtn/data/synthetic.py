"""Tiny fake MNIST / CIFAR-10 raw files in torchvision's on-disk layout (for tests and smoke-scale book builds).

They go through the same torchvision readers as the real data, so tests need no downloads.
CIFAR pickles are written like the originals: Python-2 style protocol-2 pickles whose strings
are byte strings, so they load with ``encoding="latin1"`` (keys 'data', ...; what torchvision
uses) and ``encoding="bytes"`` (keys b'data', ...); a dict of 'batch_label', 'labels', 'data'
uint8 (n, 3072) R|G|B planes, 'filenames'. Their md5s naturally differ from torchvision's list.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


class _Py2Str(bytes):
    """Marks a byte string to be pickled as a Python-2 ``str`` (BINSTRING opcode)."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us add an opcode writer
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2str(self, obj):
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + bytes(obj))
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2str


def _py2_dumps(obj: dict) -> bytes:
    """Protocol-2 pickle with every str written as a Python-2 byte string, like the CIFAR originals."""

    def conv(o):
        if isinstance(o, str):
            return _Py2Str(o.encode("latin1"))
        if isinstance(o, list):
            return [conv(v) for v in o]
        if isinstance(o, dict):
            return {conv(k): conv(v) for k, v in o.items()}
        return o

    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(conv(obj))
    return buf.getvalue()


def _digits(rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 (n, 28, 28): mostly-zero images with bright strokes, like MNIST (many exact zeros)."""
    ink = rng.random((n, 28, 28)) < 0.25
    return (ink * rng.integers(1, 256, (n, 28, 28))).astype(np.uint8)


def write_mnist(root: Path, n_train: int = 120, n_test: int = 40, seed: int = 0) -> None:
    """root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte with real IDX headers."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + _digits(rng, n).tobytes()
        )
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def write_cifar10(root: Path, n_per_batch: int = 20, n_test: int = 40, seed: int = 1) -> None:
    """root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} pickles."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [(b, n_per_batch) for b in CIFAR_BATCHES] + [("test_batch", n_test)]:
        batch = {
            "batch_label": f"fake {name}",
            "labels": [int(v) for v in rng.integers(0, 10, n)],
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"fake_{name}_{i:05d}.png" for i in range(n)],
        }
        (folder / name).write_bytes(_py2_dumps(batch))
    meta = {"num_cases_per_batch": n_per_batch, "label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(_py2_dumps(meta))


def write_all(root: Path) -> Path:
    """Both datasets under ``root``: MNIST 120 train / 40 test, CIFAR 5x20 train / 40 test."""
    write_mnist(root)
    write_cifar10(root)
    return Path(root)
