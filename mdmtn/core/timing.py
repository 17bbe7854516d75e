"""Where a run's wall time goes: named phases, summed, for every record's ``timing`` block.

A :class:`PhaseTimer` adds the seconds spent inside ``with timer("name"):`` to that phase. On a
GPU, kernels run asynchronously, so the timer synchronises the device at each phase boundary
(a few times per epoch, never per step); on the CPU it never synchronises anything.

The record's block (:meth:`PhaseTimer.block`) holds ``phases_s`` (seconds per phase, with
``other`` the rest of the wall time, so the phases sum to ``wall_time_s``) and ``after_wall_s``
(work done after the wall time was taken: the output probe, writing the checkpoint and the record).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["PhaseTimer", "PHASES"]

# The phases a run of the paper's method reports, in the order they happen. Baselines report
# the ones they have.
PHASES = (
    "data",
    "lsuv",
    "train",
    "validation",
    "prox",
    "sparsity",
    "keep",
    "cluster_tie",
    "projection",
    "test_eval",
    "compression",
)


class PhaseTimer:
    """Seconds per named phase. ``device`` (a torch.device or string): where kernels run; a CUDA
    device is synchronised at phase boundaries so that a phase is charged its own kernels."""

    def __init__(self, device: Any = "cpu") -> None:
        self.seconds: dict[str, float] = {}
        self._sync = None
        if str(device).startswith("cuda"):
            import torch

            self._sync = lambda: torch.cuda.synchronize(device)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self._sync is not None:
            self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            self.add(phase, time.perf_counter() - t0)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def block(self, wall_time_s: float) -> dict[str, Any]:
        """The record's ``timing``: ``phases_s`` (the phases timed plus ``other``, summing to
        ``wall_time_s``), ``after_wall_s`` (empty; filled by the writer) and ``device_synced``."""
        phases = {k: round(v, 4) for k, v in self.seconds.items()}
        phases["other"] = round(max(wall_time_s - sum(self.seconds.values()), 0.0), 4)
        return dict(phases_s=phases, after_wall_s={}, device_synced=self._sync is not None)
