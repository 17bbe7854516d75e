#!/usr/bin/env bash
# Fig. 2 at the paper's schedule on a GPU (issue 30), in one prepared, timed script for a lent
# device (about 15 minutes in all; each command at most 10):
#   1. the stacking check: one epoch of K = 1 and K = 8 models, sequential and stacked
#      (benchmarks/gpu_check.py, 20 batches per epoch), so the sweep's --stack is a measured choice;
#   2. the device comparison: the two vectors already trained on the CPU (k = (0.001, 0.2, 0.799)
#      and (0, 0.35, 0.65), seed 0) trained again on the GPU into $OUT/device-check, beside their CPU
#      records' numbers;
#   3. the sweep: the 90 vectors of MultiMNIST MDMTN, seed 0, --preset paper, --profile authors-2023
#      (the registered arm), resumable: what already exists in results/paper is skipped, new records
#      are written to $OUT/paper (copy them into results/paper, then commit), until the budget ends.
# Usage: bash benchmarks/gpu_front.sh [SWEEP_SECONDS (default 420)] [STACK (default 8)]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
budget=${1:-420}
stack=${2:-8}
out=${OUT:-$(pwd)/runs/gpu}
py=${PYTHON:-python3}
mkdir -p "$out/paper" "$out/device-check"
"$py" -c "import mdmtn" 2>/dev/null || "$py" -m pip install -q --no-deps -e .
"$py" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU (CPU figures)')"
common=(--dataset multimnist --model mdmtn --preset paper --profile authors-2023 --device "${MDMTN_DEVICE:-auto}" --no-progress)

echo "== 1. stacking check"
timeout 120 "$py" benchmarks/gpu_check.py --device "${MDMTN_DEVICE:-auto}" --batches 20 --stacks 1 8 || echo "(stacking check cut at 120 s)"

echo "== 2. device comparison (the CPU records: results/paper/6868558f15a2111a.json, ce26149167cf3a45.json)"
timeout 240 "$py" -m mdmtn train "${common[@]}" --k 0.001 0.2 0.799 --out "$out/device-check" || echo "(cut at 240 s)"
timeout 240 "$py" -m mdmtn train "${common[@]}" --k 0 0.35 0.65 --out "$out/device-check" || echo "(cut at 240 s)"
"$py" - "$out/device-check" <<'EOF'
import json, sys
from pathlib import Path
for p in sorted(Path(sys.argv[1]).glob("*.json")):
    g = json.loads(p.read_text())
    c = json.loads((Path("results/paper") / p.name).read_text())
    print(p.stem, "GPU", [round(100 * a, 2) for a in g["metrics"]["test_acc"]], "SR", round(g["metrics"]["SR"], 2),
          "| CPU", [round(100 * a, 2) for a in c["metrics"]["test_acc"]], "SR", round(c["metrics"]["SR"], 2),
          "| wall", round(g["wall_time_s"]), "s vs", round(c["wall_time_s"]), "s")
EOF

echo "== 3. the 90-vector sweep, stack $stack, for at most $budget s"
cp -n results/paper/*.json "$out/paper/" 2>/dev/null || true  # what exists is skipped, not retrained
timeout "$budget" "$py" -m mdmtn sweep "${common[@]}" --vectors paper --stack "$stack" --out "$out/paper" \
  || echo "(sweep stopped at the budget: re-run to resume)"
echo "new records (copy them into results/paper):"
for f in "$out"/paper/*.json; do [ -e "$repo/results/paper/$(basename "$f")" ] || basename "$f"; done
