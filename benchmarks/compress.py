"""Size and CPU latency of dense, sparse-masked and compressed models (``mdmtn.training.compress``).

For every checkpoint (``--runs DIR``: each ``*.pt`` written by ``mdmtn.records.checkpoint.save_checkpoint``),
or by default a model trained here at smoke scale, prints one row per variant:

* ``dense``: the same architecture with all weights non-zero (a fresh initialisation): what an
  unsparsified model costs;
* ``sparse-masked``: the trained sparse (and tied) model as it is stored: zeros still stored and
  multiplied;
* ``compressed``: ``mdmtn.compress_model(model)`` (tied rows merged where that makes the stored model
  smaller); ``compressed (merge all)`` merges every tie (fewest parameters, larger int64 group
  indices), ``compressed (no merge)`` none (fewer index operations, more parameters).

Columns: parameters, state_dict file size, median latency (ms) at batch 1 and 256, and for the
compressed variants the largest |Δ log-probability| against the sparse model on the same inputs.
Below each table: the paper's SR, 1 − SR, and the measured ratio compressed / dense parameters,
which sparsity alone would put at about 1 − SR (tying and the cascade of removals lower it,
unregularised layers such as the heads and input convs raise it).

Latency is measured in eval mode under ``torch.inference_mode()``, with the variants interleaved
repeat by repeat (the CPU is shared; compare within one run). Usage::

    python benchmarks/compress.py [--runs results/quick] [--reps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mdmtn
from mdmtn.core.config import INPUT_SHAPES, make_config
from mdmtn.data import Splits, TaskTensors, load_splits
from mdmtn.models import build_model
from mdmtn.records.checkpoint import load_checkpoint
from mdmtn.training.compress import count_parameters


def file_size(module: torch.nn.Module) -> int:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.pt"
        torch.save(module.state_dict(), p)
        return p.stat().st_size


def inputs(dataset: str, n: int) -> torch.Tensor:
    """Test images when MDMTN_DATA is set (realistic activations), else standard normal."""
    if os.environ.get("MDMTN_DATA"):
        return load_splits(dataset, allow_unverified_cifar=True).test.x[:n]
    return torch.randn(n, *INPUT_SHAPES[dataset], generator=torch.Generator().manual_seed(0))


def smoke_model(dataset: str, model_name: str):
    """Train a model at smoke scale (real data if MDMTN_DATA is set, else random tensors)."""
    from mdmtn.training.runner import train

    cfg = make_config(dataset, model_name, preset="smoke")
    splits = None
    if not os.environ.get("MDMTN_DATA"):
        g = torch.Generator().manual_seed(0)
        shape = INPUT_SHAPES[dataset]

        def tt(n):
            return TaskTensors(torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n, 2), generator=g))

        splits = Splits(
            dataset, tt(cfg.data.n_train), tt(cfg.data.n_val), tt(cfg.data.n_test), shape, ("task1", "task2")
        )
    res = train(cfg, splits, allow_unverified_cifar=True, progress=False)
    return res.model, cfg, f"trained here (smoke preset, {'real' if splits is None else 'random'} data)"


def latencies(models: dict[str, torch.nn.Module], x: torch.Tensor, batch: int, reps: int) -> dict[str, float]:
    """Median seconds per forward, variants interleaved."""
    xb = x[:batch].contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {k: [] for k in models}
    inner = max(1, 64 // batch)  # several calls per sample at batch 1: timer resolution and noise
    with torch.inference_mode():
        for m in models.values():
            for _ in range(3):
                m(xb)
        for _ in range(reps):
            for k, m in models.items():
                t = time.perf_counter()
                for _ in range(inner):
                    m(xb)
                times[k].append((time.perf_counter() - t) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(model: torch.nn.Module, cfg, source: str, reps: int) -> None:
    model.eval()
    shape = INPUT_SHAPES[cfg.dataset]
    torch.manual_seed(0)
    dense = build_model(cfg.model, shape, n_tasks=cfg.n_tasks).eval()
    comp = mdmtn.compress_model(model)
    comp_all = mdmtn.compress_model(model, merge_tied=True)
    comp_nm = mdmtn.compress_model(model, merge_tied=False)
    models = {
        "dense": dense,
        "sparse-masked": model,
        "compressed": comp,
        "compressed (merge all)": comp_all,
        "compressed (no merge)": comp_nm,
    }
    for m in models.values():  # as the library evaluates: channels-last weights and inputs
        m.to(memory_format=torch.channels_last)
    x = inputs(cfg.dataset, 256)
    with torch.inference_mode():
        ref = model(x)
        err = {k: max((a - b).abs().max().item() for a, b in zip(ref, models[k](x))) for k in models}
    lat1 = latencies(models, x, 1, reps)
    lat256 = latencies(models, x, 256, max(3, reps // 3))
    r = comp.report
    print(f"\n=== {cfg.dataset} / {cfg.model}, k={list(cfg.k)}: {source}")
    print(
        f"{'variant':23} {'params':>9} {'file KiB':>9} {'ms @1':>7} {'ms @256':>8} {'samples/s @256':>14} "
        f"{'max|dlogp|':>10}"
    )
    for k, m in models.items():
        e = "" if k in ("dense", "sparse-masked") else f"{err[k]:.1e}"
        print(
            f"{k:23} {count_parameters(m):9,d} {file_size(m) / 1024:9.1f} {lat1[k] * 1e3:7.3f} "
            f"{lat256[k] * 1e3:8.2f} {256 / lat256[k]:14,.0f} {e:>10}"
        )
    rm = r["row_metrics"]
    print(
        f"SR {rm['SR']:.2f}% (CR {rm['CR']:.2f}, PS {rm['PS']:.2f}); 1 - SR = {r['one_minus_SR']:.3f}; "
        f"compressed / dense params = {r['param_ratio']:.3f} (merge all: {comp_all.report['param_ratio']:.3f}, "
        f"no merge: {comp_nm.report['param_ratio']:.3f}); index buffers {r['index_buffer_elements']:,d} int64"
    )
    print(
        "layers (inputs/outputs before -> after): "
        + "; ".join(
            f"{k} {v['inputs'][0]}->{v['inputs'][1]} in, {v['outputs'][0]}->{v['outputs'][1]} out"
            + (" merged" if v.get("merged") else "")
            if "inputs" in v
            else f"{k} removed"
            for k, v in r["layers"].items()
        )
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", help="directory of checkpoints (*.pt); default: train one at smoke scale")
    ap.add_argument("--dataset", default="multimnist", help="for the smoke-scale model")
    ap.add_argument("--model", default="mdmtn", help="for the smoke-scale model")
    ap.add_argument("--reps", type=int, default=30, help="timed repeats at batch 1 (a third of them at 256)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    if args.runs:
        paths = sorted(Path(args.runs).glob("*.pt"))
        if not paths:
            raise SystemExit(f"no *.pt checkpoints in {args.runs}")
        for p in paths:
            model, cfg, _ = load_checkpoint(p)
            measure(model, cfg, str(p), args.reps)
    else:
        model, cfg, source = smoke_model(args.dataset, args.model)
        measure(model, cfg, source, args.reps)


if __name__ == "__main__":
    main()
