"""Where and with which code a run happened: the commit, the CPU or GPU, the precision flags.

Every record's ``machine`` block comes from :func:`machine_info`; :func:`resolve_device` turns a
device option into a ``torch.device`` once, where a run or sweep starts.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

import torch

from mdmtn.core.config import ConfigError, env_flag
from mdmtn.core.version import __version__

# set by pin_code_version() where a sweep starts, and inherited by its worker processes
ENV_COMMIT = "MDMTN_PINNED_COMMIT"


@functools.lru_cache(maxsize=1)
def code_version() -> str | None:
    """The git commit of the mdmtn source that ran (``+dirty`` if mdmtn/ had uncommitted
    changes), or None outside a git checkout: model numerics change between commits. Read once
    per process, at its first call: a run calls it where it starts (:func:`mdmtn.training.runner.train`),
    so a run that lasts hours names the code it started with, not a commit made while it ran; a
    sweep's workers take the commit their sweep pinned (:func:`pin_code_version`)."""
    import subprocess

    pinned = os.environ.get(ENV_COMMIT)
    if pinned:
        return None if pinned == "none" else pinned

    src = Path(__file__).resolve().parents[1]  # the mdmtn/ source tree

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        rev, dirty = git("rev-parse", "--short=12", "HEAD"), git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "") if rev else None


def pin_code_version() -> str | None:
    """Pin :func:`code_version` for this process and the worker processes it starts (through the
    environment), where a sweep starts; returns it."""
    v = code_version()
    os.environ[ENV_COMMIT] = v or "none"
    return v


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` lines of a ``/proc/cpuinfo`` text."""
    fields: dict[str, str] = {}
    for ln in text.splitlines():
        if not ln.strip():
            if fields:
                break  # the first processor's block ends at its blank line
            continue
        key, sep, value = ln.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_id(cpuinfo: str) -> str | None:
    """Vendor, family, model and stepping of a ``/proc/cpuinfo`` text (``"AuthenticAMD family 25
    model 1 stepping 1"``), or None where it has none. A virtual machine may name its CPU only
    "AMD EPYC"; these numbers still tell one generation from another (family 25 model 1 is Zen 3,
    model 17 Zen 4), and the same run's wall time has differed almost threefold between two such VMs."""
    f = _cpuinfo_fields(cpuinfo)
    if "cpu family" not in f or "model" not in f:
        return None
    parts = [f.get("vendor_id", "").strip(), f"family {f['cpu family']} model {f['model']}"]
    if "stepping" in f:
        parts.append(f"stepping {f['stepping']}")
    return " ".join(p for p in parts if p)


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _cpu_model() -> str | None:
    return _cpuinfo_fields(_cpuinfo()).get("model name") or None


def resolve_device(spec: str | torch.device | None = "cpu") -> torch.device:
    """``"auto"`` (a GPU if one is present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a
    ``torch.device``; raises :class:`mdmtn.core.config.ConfigError` for a device this machine lacks."""
    if spec is None:
        spec = "cpu"
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if dev.type == "cpu" and dev.index not in (None, 0):  # torch has one CPU device: cpu:5 would train on it
        raise ConfigError(f"device {spec!r}: there is one CPU device (cpu or cpu:0); use cpu, cuda:N or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


ENV_ALLOW_TF32 = "MDMTN_ALLOW_TF32"


def allow_tf32() -> bool:
    """The ``MDMTN_ALLOW_TF32`` choice (CLI ``--allow-tf32`` sets it): ``1``/``true``/``yes`` lets
    CUDA matmuls and cuDNN convolutions use TF32; unset, empty or ``0`` keeps full fp32 (the
    default for reproduction runs). Anything else is a :class:`mdmtn.core.config.ConfigError`."""
    return env_flag(ENV_ALLOW_TF32)


def set_precision() -> None:
    """Put the float32 precision flags in the state :func:`allow_tf32` chooses, where a run starts.
    cuDNN convolutions use TF32 by default on Ampere and newer GPUs, so a GPU "fp32" run would
    otherwise differ from a CPU run for that reason alone. The flags do not change CPU kernels."""
    tf32 = allow_tf32()
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def precision_info() -> dict[str, Any]:
    """The precision and determinism flags in force (for the record's machine block)."""
    cudnn = torch.backends.cudnn
    return dict(
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        tf32_cudnn=cudnn.allow_tf32,
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        cudnn_benchmark=cudnn.benchmark,
        cudnn_deterministic=cudnn.deterministic,
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
    )


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Where a run happened: enough to tell a 2-core CPU result from a GPU one, and which code ran
    with which precision flags (:func:`precision_info`; CUDA and cuDNN versions on a GPU)."""
    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    on_gpu = device.type == "cuda"
    return dict(
        host_platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_model=_cpu_model(),
        cpu_id=cpu_id(_cpuinfo()),
        # the vector ISA torch's CPU kernels dispatch to (DEFAULT, AVX2, AVX512, ...): results differ by it
        cpu_isa=torch.backends.cpu.get_cpu_capability(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        python=platform.python_version(),
        torch=torch.__version__,
        device=str(device),
        gpu=gpu,
        mdmtn=__version__,
        mdmtn_commit=code_version(),
        # other jobs sharing the CPU inflate wall times; the 1-minute load average says how much
        load_avg_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        cuda=torch.version.cuda if on_gpu else None,
        cudnn=torch.backends.cudnn.version() if on_gpu and torch.backends.cudnn.is_available() else None,
        precision=precision_info(),
    )
