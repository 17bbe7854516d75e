"""Samples/s of one phase-1 training epoch: the library's trainer vs the authors' way of computing it.

Both paths train the same MDMTN (same initial weights) with batch 256, Adam, the Chebyshev
augmented-Lagrangian loss with the GrOWL value in it (detached, computed every batch) and the
GrOWL prox at the end of the epoch. They differ only in *how* this is computed:

* ``library``: ``mdmtn.training.engine.Run.train_epoch`` + ``Run.growl_step``, exactly what
  ``mdmtn.training.trainer.train_algorithm1`` runs: batches are slices of one pre-normalised tensor, channels-last
  model and inputs, vectorised GrOWL value and prox.
* ``authors-style``: what the authors' code does (see
  measured on this project's machine): a ``torch.utils.data.DataLoader`` in the
  main process over a ``random_split``-style subset whose dataset turns every sample into a PIL
  image and applies ``ToTensor`` + ``Normalize``, NCHW tensors, the GrOWL value from
  ``state_dict()`` with a Python loop over weight rows every batch, anomaly detection switched on
  inside the batch loop, and a prox that rescales rows in a Python loop (its pooling step is the
  library's vectorised routine, so this path is, if anything, slightly flattered). Its structure
  follows the authors' ``obj_sparsity`` / ``apply_growl``.
* ``library, chw`` (``--chw``): the library path with the models' flatten as it was before
  2026-11-26 (activations copied to (C, H, W) order before the fc layers), applied to that
  model instance only (:func:`use_chw_flatten`): the before/after of
  ``mdmtn.models.backbone.flatten_linear_relu``.

``--malloc-tuning`` applies a proposed process-wide allocator setting (:func:`tune_malloc`) to
every path of that run; compare two runs, with and without it.

Both timed paths include the end-of-epoch prox and exclude validation. They alternate repeat by
repeat so that load from other jobs on the shared CPU hits them alike; the ratio of the medians
is the figure to read. The authors' own code measured ≈2,000 (MultiMNIST) and ≈890
(Cifar10Mnist) samples/s on this machine, unloaded, 2 threads; the issue's target is 3× that.

Usage::

    MDMTN_DATA=../shared/data \\
        python benchmarks/train_throughput.py [--datasets multimnist cifar10mnist] \\
        [--n-samples 10240] [--repeats 3] [--threads N] [--profile] [--chw] [--malloc-tuning]

Without ``MDMTN_DATA`` random data of the right shape is used (throughput does not depend on
pixel values).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import types
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from mdmtn.core.config import INPUT_SHAPES, make_config
from mdmtn.data import Splits, TaskTensors, load_splits
from mdmtn.data import cifar10mnist as cm_mod
from mdmtn.data import multimnist as mm_mod
from mdmtn.models import build_model
from mdmtn.models.backbone import pool_bn_relu
from mdmtn.objectives.growl import owl_prox, weight_rows
from mdmtn.objectives.scalarization import ChebyshevAL
from mdmtn.training.engine import Run

AUTHORS_MEASURED = {"multimnist": 2000.0, "cifar10mnist": 890.0}  # samples/s, original-code-measured.md
NORM = {"multimnist": ((mm_mod.MEAN,), (mm_mod.STD,)), "cifar10mnist": (cm_mod.MEAN, cm_mod.STD)}


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------
def load_train(dataset: str, n: int, seed: int = 0) -> tuple[TaskTensors, bool]:
    """First ``n`` training samples (normalised float32) and whether they are real data."""
    if os.environ.get("MDMTN_DATA"):
        s = load_splits(dataset, allow_unverified_cifar=True)
        return s.train.subset(n), True
    g = torch.Generator().manual_seed(seed)
    mean, std = NORM[dataset]
    u8 = torch.randint(0, 256, (n, *INPUT_SHAPES[dataset]), generator=g, dtype=torch.uint8)
    x = (u8.float() / 255 - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    return TaskTensors(x, torch.randint(0, 10, (n, 2), generator=g)), False


def to_uint8_images(dataset: str, x: torch.Tensor) -> np.ndarray:
    """Undo Normalize/ToTensor: the uint8 HxW (MultiMNIST) or HxWx3 (Cifar10Mnist) arrays the
    authors' dataset classes hold (exact: rounding removes the float error)."""
    mean, std = NORM[dataset]
    u = ((x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)) * 255).round().clamp(0, 255)
    u = u.to(torch.uint8).numpy()
    return u[:, 0] if u.shape[1] == 1 else np.ascontiguousarray(u.transpose(0, 2, 3, 1))


class AuthorsStyleDataset(torch.utils.data.Dataset):
    """Per-sample PIL image -> ToTensor -> Normalize, returning (img, label_task1, label_task2),
    as the authors' MultiMNIST / Cifar10Mnist classes do."""

    def __init__(self, dataset: str, images: np.ndarray, y: torch.Tensor):
        self.images, self.y = images, y.numpy()
        self.mode = "L" if images.ndim == 3 else "RGB"
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(*NORM[dataset])])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i], mode=self.mode)
        return self.transform(img), int(self.y[i, 0]), int(self.y[i, 1])


# ---------------------------------------------------------------------------------------------------
# the authors' way of computing the GrOWL value and prox: Python loops over rows
# ---------------------------------------------------------------------------------------------------
def loop_penalty(model, names, beta1=0.8, beta2=0.2) -> torch.Tensor:
    """GrOWL-Spike value as the authors compute it every batch: weights read from ``state_dict()``
    (so no gradient), rows in their memory-order layout, row norms and an ascending sort per
    layer, then one Python iteration per row accumulating ``theta_i * r_(i)`` from a list of θ."""
    sd = model.state_dict()
    total = 0.0
    for name in names:
        rows = weight_rows(sd[name], "code")
        r_sorted, _ = torch.sort(torch.norm(rows, p=2, dim=1))
        theta = [beta1 + beta2] + [beta2] * (len(r_sorted) - 1)
        layer = 0.0
        for i in range(len(r_sorted)):
            layer = layer + theta[i] * r_sorted[i]
        total = total + layer
    return total


@torch.no_grad()
def loop_prox_(model, names, beta1=0.8, beta2=0.2) -> None:
    """The authors' end-of-epoch prox: vectorised row norms, θ permuted by a Python list
    comprehension, one Python iteration per row to rescale it. The pooling itself is the library's
    vectorised "2023" routine (theirs is pure Python, about 3% of their epoch), so this path is,
    if anything, a little faster than the original."""
    sd = model.state_dict()
    for name in names:
        w = sd[name]
        rows = weight_rows(w, "code")
        z = torch.norm(rows, p=2, dim=1)
        _, order = torch.sort(z)
        theta = [beta1 + beta2] + [beta2] * (len(z) - 1)
        theta_rows = [theta[i] for i in torch.argsort(order)]  # noqa: F841 - the authors' cost; the
        # library's "2023" routine applies the same permutation internally
        u = owl_prox(z.double(), torch.tensor(theta), mode="2023")
        new = torch.zeros_like(rows)
        for i in range(rows.shape[0]):
            if z[i] >= 1.1920929e-07:
                new[i, :] = rows[i, :] * (u[i] / z[i])
        w.copy_(new.view(w.shape) if w.ndim == 4 else new.t())


# ---------------------------------------------------------------------------------------------------
# the previous flatten, measured here without editing mdmtn.models (``--chw``)
# ---------------------------------------------------------------------------------------------------
def _fc_chw(fc: torch.nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """relu(fc(flatten(h))) with h copied to (C, H, W) order first: the models' flatten before
    ``mdmtn.models.backbone.flatten_linear_relu`` kept channels-last activations as they are."""
    return F.relu(fc(h.flatten(1)))


def _shared_forward_chw(self, x):
    x = pool_bn_relu(self.conv1(x), self.bn1)
    return _fc_chw(self.fc, pool_bn_relu(self.conv2(x), self.bn2))


def _monitor_forward_chw(self, x):
    return _fc_chw(self.fc, pool_bn_relu(self.conv(x), self.bn))


def use_chw_flatten(model) -> None:
    """Override (on this instance only) the shared network's and monitors' forward."""
    model.shared.forward = types.MethodType(_shared_forward_chw, model.shared)
    for m in getattr(model, "monitors", []):
        m.forward = types.MethodType(_monitor_forward_chw, m)


# ---------------------------------------------------------------------------------------------------
# the two timed paths
# ---------------------------------------------------------------------------------------------------
class LibraryPath:
    """The trainer's own epoch: ``Run.train_epoch`` then ``Run.growl_step`` (channels-last model,
    as ``mdmtn.training.trainer.train_algorithm1`` sets it up)."""

    def __init__(self, dataset: str, train: TaskTensors, state: dict, chw: bool = False):
        self.cfg = make_config(dataset, "mdmtn", preset="paper", n_train=len(train))
        model = build_model("mdmtn", INPUT_SHAPES[dataset])
        model.load_state_dict(state)
        model.to(memory_format=torch.channels_last)
        if chw:
            use_chw_flatten(model)
        self.splits = Splits(
            name=dataset,
            train=train,
            val=train.subset(0),
            test=train.subset(0),
            input_shape=INPUT_SHAPES[dataset],
            task_names=("t1", "t2"),
        )
        self.run = Run(self.cfg, model, self.splits, progress=False)
        params = list(model.parameters()) + [self.run.al.t]
        self.opt = torch.optim.Adam(params, lr=self.cfg.schedule.lr)

    def epoch(self, n: int | None = None) -> float:
        if n is not None:  # warm-up on a prefix
            self.run.splits = replace(self.splits, train=self.splits.train.subset(n))
        t0 = time.perf_counter()
        self.run.train_epoch(self.opt)
        self.run.growl_step(0)
        dt = time.perf_counter() - t0
        self.run.splits = self.splits
        return dt


class AuthorsPath:
    """DataLoader + per-sample PIL transforms, NCHW, loop penalty every batch, anomaly mode, loop prox."""

    def __init__(self, dataset: str, train: TaskTensors, state: dict):
        self.cfg = cfg = make_config(dataset, "mdmtn", preset="paper", n_train=len(train))
        self.model = build_model("mdmtn", INPUT_SHAPES[dataset])
        self.model.load_state_dict(state)
        self.names = [n for n, _ in self.model.growl_weights()]
        self.al = ChebyshevAL(
            cfg.k, cfg.objective.mu0, cfg.objective.eps_aug, generator=torch.Generator().manual_seed(2)
        )
        self.opt = torch.optim.Adam(list(self.model.parameters()) + [self.al.t], lr=cfg.schedule.lr)
        full = AuthorsStyleDataset(dataset, to_uint8_images(dataset, train.x), train.y)
        # the authors' training set is a random_split Subset of the dataset: one more indirection
        perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(42)).tolist()
        self.ds = torch.utils.data.Subset(full, perm)

    def epoch(self, n: int | None = None) -> float:
        ds = self.ds if n is None else torch.utils.data.Subset(self.ds, range(n))
        loader = torch.utils.data.DataLoader(ds, batch_size=self.cfg.data.batch_size, shuffle=True, num_workers=0)
        model, al, opt = self.model, self.al, self.opt
        model.train()
        anomaly = torch.is_anomaly_enabled()
        t0 = time.perf_counter()
        try:
            for x, y1, y2 in loader:
                torch.autograd.set_detect_anomaly(True)  # the authors switch it on inside the loop
                outs = model(x)
                l0 = loop_penalty(model, self.names, self.cfg.growl.beta1, self.cfg.growl.beta2)
                losses = torch.stack([l0, F.nll_loss(outs[0], y1), F.nll_loss(outs[1], y2)])
                la, _ = al(losses)
                opt.zero_grad()
                la.backward()
                opt.step()
            loop_prox_(model, self.names, self.cfg.growl.beta1, self.cfg.growl.beta2)
        finally:
            torch.autograd.set_detect_anomaly(anomaly)
        return time.perf_counter() - t0


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS (proposed, ``--malloc-tuning``).

    A training step allocates and frees activations of up to ~30 MB (Cifar10Mnist monitor conv
    output, batch 256). glibc serves such blocks with mmap/munmap or trims them off the heap, so
    every step page-faults them in again: the profile shows it as ``aten::fill_`` (zeroing the
    pool's gradient buffer) and slow first writes in the convs. Raising M_MMAP_THRESHOLD to its
    maximum (32 MiB on 64-bit) and M_TRIM_THRESHOLD keeps the pages mapped. Process-wide and
    numerically neutral; the same can be done without code by exporting
    ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824`` (or by preloading
    jemalloc/tcmalloc). Returns False where there is no glibc ``mallopt``.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(
            libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
        )
    except (OSError, AttributeError):
        return False


def profile_library(path: LibraryPath, n: int, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile

    path.epoch(min(n, 1024))  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        path.epoch()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["multimnist", "cifar10mnist"])
    ap.add_argument("--n-samples", type=int, default=10_240, help="training samples per timed epoch")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per path (alternating)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--skip-authors", action="store_true", help="time the library path only")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table of one library epoch")
    ap.add_argument(
        "--malloc-tuning",
        action="store_true",
        help="proposed: keep freed memory in glibc's heap for the whole process (tune_malloc)",
    )
    ap.add_argument(
        "--chw",
        action="store_true",
        help="also time the library path with the previous (C, H, W) flatten (use_chw_flatten)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = tune_malloc() if args.malloc_tuning else False
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, os.cpu_count()={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}, malloc tuning {'on' if tuned else 'off'} (all paths)"
    )
    table = []
    for ds in args.datasets:
        train, real = load_train(ds, args.n_samples)
        n = len(train)
        torch.manual_seed(0)
        state = build_model("mdmtn", INPUT_SHAPES[ds]).state_dict()
        lib = LibraryPath(ds, train, state)
        paths = {"library": lib}
        if args.chw:
            paths["library, chw"] = LibraryPath(ds, train, state, chw=True)
        if not args.skip_authors:
            paths["authors-style"] = AuthorsPath(ds, train, state)
        for p in paths.values():
            p.epoch(min(n, 1024))  # warm-up: allocator, mkldnn primitives
        times: dict[str, list[float]] = {k: [] for k in paths}
        for r in range(args.repeats):
            for name, p in paths.items():
                times[name].append(p.epoch())
        base = n / statistics.median(times["authors-style"]) if "authors-style" in times else None
        for name, ts in times.items():
            sps = n / statistics.median(ts)
            table.append(
                (
                    ds,
                    name,
                    sps,
                    n / min(ts),
                    sps / base if base else float("nan"),
                    AUTHORS_MEASURED[ds],
                    sps / AUTHORS_MEASURED[ds],
                    real,
                    n,
                )
            )
        if args.profile:
            print(f"\n=== profile: {ds} library path, one epoch of {n} samples ===")
            profile_library(lib, n)
    print(
        f"\n{'dataset':13} {'path':14} {'samples/s':>10} {'best':>8} {'vs baseline':>11} "
        f"{'authors measured':>16} {'vs measured':>11}  data"
    )
    for ds, name, sps, best, ratio, meas, vs_meas, real, n in table:
        print(
            f"{ds:13} {name:14} {sps:10,.0f} {best:8,.0f} {ratio:10.2f}x {meas:16,.0f} {vs_meas:10.2f}x  "
            f"{'real' if real else 'random'} n={n}"
        )
    print(
        "samples/s = median over repeats (best = fastest repeat); target: >= 3x the authors' measured "
        "figure (>= 6,000 MultiMNIST, >= 2,700 Cifar10Mnist)"
    )


if __name__ == "__main__":
    main()
