"""MultiMNIST composites (as the paper describes them; the book's appendix gives the details).

Each image l of a split gets one partner r drawn uniformly from the same split (seeded; r may
equal l). On a 36x36 canvas the left digit sits at [0:28, 0:28], the right one at [6:34, 6:34],
with the pixel-wise max in the overlap. The canvas is resized to 28x28 with
``skimage.transform.resize`` defaults (bilinear, anti-aliasing, reflect, clip) with
``preserve_range=True`` and cast to uint8 by truncation. Labels are (left, right).

Linear time and vectorised: the original drew a full 60k permutation per image (quadratic) and
resized image by image (57 s). Here the resize runs on chunks of images as one 3-D array, with the
batch axis given zero anti-aliasing sigma and zoom 1, and the output clip done per image, which
reproduces the per-image call bit for bit (checked in tests/data/test_data.py).
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

MEAN, STD = 0.1307, 0.3081  # Normalize() of the original code (MNIST train statistics)
TASK_NAMES = ("left", "right")
INPUT_SHAPE = (1, 28, 28)
_CHUNK = 4096  # images per vectorised resize: ~42 MB of float64 canvas


def draw_partners(n: int, seed: int, stream: int) -> np.ndarray:
    """Partner index r for each l in range(n): int64 (n,), uniform over [0, n).

    ``stream`` separates splits (0 train, 1 test), so test composites do not depend on the
    size of the training set.
    """
    return np.random.default_rng([seed, stream]).integers(0, n, size=n, dtype=np.int64)


def compose(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Overlay and resize. left, right: uint8 (n, 28, 28) -> uint8 (n, 28, 28)."""
    n = len(left)
    canvas = np.zeros((n, 36, 36), dtype=np.float64)  # float input: skimage keeps the 0-255 range
    canvas[:, :28, :28] = left
    canvas[:, 6:34, 6:34] = np.maximum(canvas[:, 6:34, 6:34], right)
    out = resize(canvas, (n, 28, 28), preserve_range=True, clip=False)
    # resize(clip=True) clips to the input's [min, max]; per image, not per chunk.
    flat = canvas.reshape(n, -1)
    np.clip(out, flat.min(1)[:, None, None], flat.max(1)[:, None, None], out=out)
    return out.astype(np.uint8)  # truncation, as the original cast


def build_split(images: np.ndarray, labels: np.ndarray, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """One split. images uint8 (N, 28, 28), labels int (N,) -> x uint8 (N, 28, 28), y int64 (N, 2)."""
    r = draw_partners(len(images), seed, stream)
    x = np.empty_like(images, dtype=np.uint8)
    for s in range(0, len(images), _CHUNK):
        x[s : s + _CHUNK] = compose(images[s : s + _CHUNK], images[r[s : s + _CHUNK]])
    y = np.stack([labels, labels[r]], axis=1).astype(np.int64)
    return x, y


def build(raw: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """raw: mnist_{train,test}_{x,y} -> {train,test}_{x,y}; x uint8 (N, 1, 28, 28), y int64 (N, 2)."""
    out = {}
    for stream, split in enumerate(("train", "test")):
        x, y = build_split(raw[f"mnist_{split}_x"], raw[f"mnist_{split}_y"], seed, stream)
        out[f"{split}_x"], out[f"{split}_y"] = x[:, None], y
    return out
