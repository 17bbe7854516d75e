"""Cifar10Mnist composites (as the paper describes them; the book's appendix gives the details).

CIFAR-10 image i is paired with MNIST image i (train: i < min(50000, sizes); test: all pairs).
The 28x28 digit is resized to 32x32 with PIL's default filter for mode L (bicubic) and pasted,
as gray RGB, over the whole CIFAR image through the mask ``128 where digit > 0``, i.e. a 50 %
blend on every nonzero pixel (bicubic halo pixels included, which gives the dark fringes the
original has). Labels are (cifar_label, mnist_label). No augmentation.

The resize runs through PIL per digit (cheap); the paste is vectorised with PIL's own integer
blend, verified against ``Image.paste`` in tests/data/test_data.py.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MEAN = (0.4914, 0.4822, 0.4465)  # Normalize() of the original code
STD = (0.2023, 0.1994, 0.2010)
TASK_NAMES = ("cifar10", "mnist")
INPUT_SHAPE = (3, 32, 32)
MASK_VALUE = 128
MAX_TRAIN = 50_000  # MNIST train digits 50k..59,999 are unused


def resize_digits(digits: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> uint8 (n, 32, 32), PIL bicubic (the default filter for mode L)."""
    out = np.empty((len(digits), 32, 32), dtype=np.uint8)
    for i, d in enumerate(digits):
        out[i] = np.asarray(Image.fromarray(d, mode="L").resize((32, 32), Image.Resampling.BICUBIC))
    return out


def overlay(cifar: np.ndarray, digits32: np.ndarray) -> np.ndarray:
    """``Image.paste(digit_rgb, (0, 0), mask)`` for a batch.

    cifar uint8 (n, 32, 32, 3), digits32 uint8 (n, 32, 32) -> uint8 (n, 32, 32, 3).
    PIL blends with integer arithmetic, out = DIV255(cifar*(255-m) + digit*m) with
    DIV255(a) = ((a+128) + ((a+128) >> 8)) >> 8 (a/255 rounded). With m in {0, 128}: unmasked
    pixels keep cifar exactly, masked ones are DIV255(cifar*127 + digit*128) <= 65407, which fits
    uint16 (half the memory traffic of int32; this is the bulk of the build time).
    """
    t = cifar.astype(np.uint16)
    t *= 255 - MASK_VALUE
    t += (digits32.astype(np.uint16) * MASK_VALUE + 128)[..., None]
    t += t >> 8
    t >>= 8
    return np.where((digits32 > 0)[..., None], t.astype(np.uint8), cifar)


def build_split(cifar_x, cifar_y, mnist_x, mnist_y, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First n pairs -> x uint8 (n, 3, 32, 32) (CHW), y int64 (n, 2)."""
    x = overlay(cifar_x[:n], resize_digits(mnist_x[:n])).transpose(0, 3, 1, 2)
    y = np.stack([cifar_y[:n], mnist_y[:n]], axis=1).astype(np.int64)
    return np.ascontiguousarray(x), y


def build(raw: dict[str, np.ndarray], seed: int | None = None) -> dict[str, np.ndarray]:
    """raw: {cifar,mnist}_{train,test}_{x,y} -> {train,test}_{x,y}. Deterministic; ``seed`` unused."""
    out = {}
    for split in ("train", "test"):
        cx, cy, mx, my = (raw[f"{s}_{split}_{k}"] for s in ("cifar", "mnist") for k in ("x", "y"))
        n = min(len(cx), len(mx)) if split == "test" else min(MAX_TRAIN, len(cx), len(mx))
        out[f"{split}_x"], out[f"{split}_y"] = build_split(cx, cy, mx, my, n)
    return out
