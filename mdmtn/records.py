"""Run records and checkpoints: JSON results keyed by config hash, written atomically.

A record holds the config, its key, the metrics, the per-epoch history, the wall time,
the machine and the library version, so every number shown elsewhere says how it was made.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import INPUT_SHAPES, RunConfig


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read back."""


@functools.lru_cache(maxsize=1)
def code_version() -> str | None:
    """The git commit of the mdmtn source that ran (``+dirty`` if mdmtn/ had uncommitted
    changes), or None outside a git checkout: model numerics change between commits."""
    import subprocess

    src = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "") if rev else None


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Where a run happened: enough to tell a 2-core CPU result from a GPU one, and which code ran."""
    return dict(
        host_platform=platform.platform(), processor=platform.processor() or platform.machine(),
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), python=platform.python_version(),
        torch=torch.__version__, device="cpu", mdmtn=__version__, mdmtn_commit=code_version(),
        # other jobs sharing the CPU inflate wall times; the 1-minute load average says how much
        load_avg_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    path = Path(path)
    data = json.dumps(obj, indent=1, sort_keys=False, allow_nan=True).encode()
    _atomic_write(path, lambda f: f.write(data))
    return path


def record_path(out_dir: str | os.PathLike, cfg: RunConfig) -> Path:
    """``<out_dir>/<config key>.json``."""
    return Path(out_dir) / f"{cfg.key()}.json"


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def load_records(out_dir: str | os.PathLike, status: str | None = "ok") -> list[dict[str, Any]]:
    """All records in a directory (optionally only those with the given status), sorted by key.
    Unreadable files (e.g. a foreign JSON) are skipped."""
    out = []
    for p in sorted(Path(out_dir).glob("*.json")):
        try:
            rec = load_record(p)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and "config" in rec and (status is None or rec.get("status") == status):
            out.append(rec)
    return out


def find_record(out_dir: str | os.PathLike, cfg: RunConfig) -> dict[str, Any] | None:
    """The finished record of ``cfg`` in ``out_dir``, or None (missing, failed or unreadable)."""
    p = record_path(out_dir, cfg)
    try:
        rec = load_record(p)
    except (OSError, json.JSONDecodeError):
        rec = None
    if rec is None:  # e.g. written by a version whose key scheme differed: match on the config itself
        for other in load_records(out_dir):
            try:
                if RunConfig.from_dict(other["config"]) == cfg:
                    rec = other
                    break
            except Exception:  # noqa: BLE001 - a record of an incompatible version is simply no match
                continue
    return rec if rec is not None and rec.get("status") == "ok" else None


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, cfg: RunConfig, extra: dict | None = None) -> Path:
    """Save the model's state_dict with its config (no pickled modules), atomically."""
    path = Path(path)
    payload = {"format": "mdmtn-checkpoint-1", "config": cfg.to_dict(), "state_dict": model.state_dict(),
               "extra": extra or {}}
    _atomic_write(path, lambda f: torch.save(payload, f))
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, RunConfig, dict]:
    """Rebuild the model saved by :func:`save_checkpoint`; returns (model, config, extra).

    Raises :class:`CheckpointError` with what to do if the file is missing or corrupt.
    """
    from .models import build_model

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; train the run first (python -m mdmtn train ...)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != "mdmtn-checkpoint-1":
            raise ValueError("not an mdmtn checkpoint")
        cfg = RunConfig.from_dict(payload["config"])
        model = build_model(cfg.model, INPUT_SHAPES[cfg.dataset], n_tasks=cfg.n_tasks)
        model.load_state_dict(payload["state_dict"])
    except Exception as e:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not an mdmtn checkpoint ({type(e).__name__}: {e}); "
            "delete it and re-run the training command to recreate it"
        ) from e
    return model, cfg, payload.get("extra", {})
