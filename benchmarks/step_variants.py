"""Where could one MDMTN training step get faster? Alternatives timed side by side in one process.

One step = forward of the MDMTN on a batch of 256, the two tasks' NLL, backward, Adam. Variants
(the library's model is not modified; every variant's outputs are checked against it first):

* ``library``: the model as ``mdmtn.training.trainer`` runs it (channels-last; activations flattened in
  (H, W, C) order with the fc columns permuted, ``mdmtn.models.backbone.flatten_linear_relu``).
* ``nchw``: the same without channels-last.
* ``chw-flatten``: channels-last, but activations copied to (C, H, W) order before the fc
  layers: the library before 2026-11-26 (``train_throughput.use_chw_flatten``).
* ``gemm-stem``: the three first-stage convolutions that read the input (shared conv1 and the two
  monitors' convs; MultiMNIST has one input channel) fused into one im2col + GEMM, pooled once.
* ``compile``: ``torch.compile`` (inductor, CPU) of the library's model.

``--faults`` also counts minor page faults per ``library`` step in fresh processes that run only
that model (the trainer's case), with glibc's default allocator and with mmap disabled
(``M_MMAP_MAX = 0``, which keeps freed activation buffers mapped), alternating 3 times.
Prints ms/step, samples/s and the ratio to ``library``.

Usage::

    python benchmarks/step_variants.py [--dataset multimnist] [--repeats 5] [--threads N] [--no-compile] [--faults]

Random inputs: a step's cost does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import statistics
import time
import types

import torch
import torch.nn.functional as F
from train_throughput import use_chw_flatten

from mdmtn.core.config import INPUT_SHAPES
from mdmtn.models import build_model
from mdmtn.models.backbone import flatten_linear_relu, pool_bn_relu
from mdmtn.records.machine import machine_info


def _gemm_stem_representation(self, x):
    """MDMTN.representation with the input-reading convs as one im2col GEMM (no BatchNorm only)."""
    sh = self.shared
    convs = [sh.conv1] + [m.conv for m in self.monitors]
    k = convs[0].kernel_size[0]
    b, c, h, _ = x.shape
    ho = h - k + 1
    patches = F.unfold(x, k).transpose(1, 2).reshape(b * ho * ho, c * k * k)
    w = torch.cat([cv.weight.reshape(cv.out_channels, -1) for cv in convs])
    y = torch.addmm(torch.cat([cv.bias for cv in convs]), patches, w.t()).view(b, ho, ho, -1).permute(0, 3, 1, 2)
    hs = F.relu(F.max_pool2d(y, 2)).split([cv.out_channels for cv in convs], 1)
    z = flatten_linear_relu(sh.fc, pool_bn_relu(sh.conv2(hs[0]), sh.bn2))
    return [a[0] * z + a[1] * flatten_linear_relu(m.fc, hm) for a, m, hm in zip(self.alpha, self.monitors, hs[1:])]


def make_step(variant: str, shape, x, y):
    torch.manual_seed(0)
    model = build_model("mdmtn", shape, n_tasks=2)
    if variant != "nchw":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if variant == "gemm-stem":
        model.representation = types.MethodType(_gemm_stem_representation, model)
    if variant == "chw-flatten":
        use_chw_flatten(model)
    fwd = torch.compile(model) if variant == "compile" else model
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        loss = sum(F.nll_loss(o, y[:, i]) for i, o in enumerate(fwd(x)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with torch.no_grad():
        out = [o.clone() for o in fwd(x)]
    return step, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="multimnist", choices=tuple(INPUT_SHAPES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--faults", action="store_true", help="page faults per step, glibc default vs mmap off")
    p.add_argument("--fault-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fault_child:
        return fault_child(args)
    mi = machine_info()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {mi.get('processor')}, "
        f"load average {mi.get('load_avg_1min')}"
    )
    shape = INPUT_SHAPES[args.dataset]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, *shape, generator=g), torch.randint(0, 10, (256, 2), generator=g)
    variants = ["library", "nchw", "chw-flatten"] + (["gemm-stem"] if shape[0] == 1 else [])
    variants += [] if args.no_compile else ["compile"]
    steps, ref = {}, None
    for v in variants:
        t0 = time.perf_counter()
        steps[v], out = make_step(v, shape, x, y)
        ref = out if ref is None else ref
        diff = max((a - b).abs().max().item() for a, b in zip(out, ref))
        steps[v]()
        steps[v]()
        print(
            f"  {v:12s} set-up + 2 warm-up steps {time.perf_counter() - t0:5.1f} s, max |output - library| {diff:.1e}"
        )
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # interleaved, so load spells hit every variant alike
        for v in variants:
            t0 = time.perf_counter()
            for _ in range(10):
                steps[v]()
            times[v].append((time.perf_counter() - t0) / 10)
    base = statistics.median(times["library"])
    print(f"=== {args.dataset} / MDMTN, batch 256, forward + backward + Adam (median of {args.repeats} x 10 steps)")
    for v in variants:
        t = statistics.median(times[v])
        print(f"{v:12s} {t * 1e3:7.1f} ms/step {256 / t:7,.0f} samples/s   {base / t:5.2f}x library")
    if args.faults:
        import subprocess
        import sys

        res: dict[str, list[tuple[float, float]]] = {"glibc default": [], "mmap off": []}
        for _ in range(3):
            for mode in res:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--dataset",
                        args.dataset,
                        "--fault-child",
                        mode,
                        "--threads",
                        str(torch.get_num_threads()),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                res[mode].append((float(out[-2]), float(out[-1])))
        for mode, v in res.items():
            print(
                f"fresh process, {mode:13s}: {statistics.median(f for f, _ in v):7.0f} minor page faults/step, "
                f"{statistics.median(t for _, t in v) * 1e3:6.1f} ms/step (median of 3 processes; each: "
                + ", ".join(f"{t * 1e3:.1f}" for _, t in v)
                + ")"
            )


def fault_child(args) -> None:
    """One process, one model: page faults and time per step after 3 warm-up steps."""
    if args.fault_child == "mmap off":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    shape = INPUT_SHAPES[args.dataset]
    g = torch.Generator().manual_seed(0)
    step, _ = make_step(
        "library", shape, torch.randn(256, *shape, generator=g), torch.randint(0, 10, (256, 2), generator=g)
    )
    for _ in range(3):
        step()
    f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(20):
        step()
    dt = (time.perf_counter() - t0) / 20
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20, dt)


if __name__ == "__main__":
    main()
