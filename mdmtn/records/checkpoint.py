"""Checkpoints: a model's weights with its config (no pickled code), and where a copy came from."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from mdmtn.core.config import INPUT_SHAPES, RunConfig
from mdmtn.core.files import atomic_write
from mdmtn.models import build_model
from mdmtn.records.store import OUT_ADVICE


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read back."""


# The models here are at most a few MB; a file, or its zip members once inflated, far larger is no
# checkpoint of theirs, and inflating it could exhaust memory before torch.load could refuse it.
MAX_CHECKPOINT_BYTES = 512 * 2**20


def check_checkpoint_file(path: Path) -> None:
    """Before ``torch.load`` opens it: ``path`` is a regular file in torch's zip format whose size
    and inflated size are at most :data:`MAX_CHECKPOINT_BYTES`; :class:`CheckpointError` otherwise."""
    import stat
    import zipfile

    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"checkpoint {path} is not a regular file (a folder, pipe or device)")
    if st.st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"checkpoint {path} is {st.st_size:,} bytes, more than any model here ({MAX_CHECKPOINT_BYTES:,})"
        )
    try:
        with zipfile.ZipFile(path) as z:
            inflated = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not an mdmtn checkpoint (not in torch's zip format: "
            f"{type(e).__name__}); it was not opened, so nothing in it was executed. Delete it and re-run the "
            "training command to recreate it"
        ) from None
    if inflated > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"checkpoint {path} inflates to {inflated:,} bytes, more than any model here ({MAX_CHECKPOINT_BYTES:,}); "
            "it was not opened"
        )


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, cfg: RunConfig, extra: dict | None = None) -> Path:
    """Save the model's state_dict with its config (no pickled modules), atomically."""
    path = Path(path)
    payload = {
        "format": "mdmtn-checkpoint-1",
        "config": cfg.to_dict(),
        "state_dict": model.state_dict(),
        "extra": extra or {},
    }
    atomic_write(path, lambda f: torch.save(payload, f), OUT_ADVICE)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, RunConfig, dict]:
    """Rebuild the model saved by :func:`save_checkpoint`; returns (model, config, extra).

    Raises :class:`CheckpointError` with what to do if the file is missing or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; train the run first (python -m mdmtn train ...)")
    check_checkpoint_file(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != "mdmtn-checkpoint-1":
            raise ValueError("not an mdmtn checkpoint")
        cfg = RunConfig.from_dict(payload["config"])
        model = build_model(cfg.model, INPUT_SHAPES[cfg.dataset], n_tasks=cfg.n_tasks)
        model.load_state_dict(payload["state_dict"])
    except pickle.UnpicklingError as e:
        # torch's own message suggests weights_only=False, which would execute the file's code: never
        raise CheckpointError(
            f"checkpoint {path} holds Python objects other than tensors and plain values; it was refused and "
            "nothing in it was executed. Delete it and re-run the training command to recreate it"
        ) from e
    except Exception as e:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not an mdmtn checkpoint ({type(e).__name__}: {e}); "
            "delete it and re-run the training command to recreate it"
        ) from e
    return model, cfg, payload.get("extra", {})
