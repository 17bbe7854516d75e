#!/usr/bin/env bash
# The device check in one command, sized for 8 minutes on one GPU (benchmarks/gpu_check.py):
# one eager epoch (K = 1) and stacked vs sequential epochs at K = 8 and 32, one paper-preset
# MultiMNIST MDMTN run with its per-phase times, and the projected 90-vector sweep, each beside
# its target. On a machine without a GPU it runs on the CPU and says so, with short defaults
# (10 batches per epoch, K = 1 and 8, a smoke-preset run) so that it ends in a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import mdmtn" 2>/dev/null || pip install -q --no-deps -e .
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then args=(--run)
  else args=(--run --run-preset smoke --batches 10 --stacks 1 8); fi
fi
exec timeout 480 python benchmarks/gpu_check.py --device "${MDMTN_DEVICE:-auto}" "${args[@]}"
