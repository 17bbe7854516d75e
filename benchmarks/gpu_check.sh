#!/usr/bin/env bash
# The device check in one command, sized for 8 minutes on one GPU (benchmarks/gpu_check.py):
# stacked vs sequential epochs at K = 8 and 32, one paper-preset MultiMNIST MDMTN run, and the
# projected 90-vector sweep. On a machine without a GPU it runs on the CPU and says so; there,
# pass e.g. --batches 10 --stacks 2 4 to keep it short and leave out the full run.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import mdmtn" 2>/dev/null || pip install -q --no-deps -e .
args=("$@")
if [ ${#args[@]} -eq 0 ]; then args=(--run); fi
exec timeout 480 python benchmarks/gpu_check.py --device "${MDMTN_DEVICE:-auto}" "${args[@]}"
