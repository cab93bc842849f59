#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and its driver (no CUDA toolkit needed: burn's CUDA
# backend loads the driver at run time). Run it whenever a GPU is at hand:
#
#   scripts/gpu-check.sh [WORKDIR]
#
# 1. builds awsnet with --features cuda (release);
# 2. times one epoch of an ASAN at the paper's geometry (base 32 filters, 128×128 input, batch
#    16) on phantom cases, on the GPU and on the CPU, and prints seconds per step;
# 3. runs one task of the demo grid (the coarse CASN, its whole schedule) with --device cuda
#    and with --device cpu, and compares the two runs' validation metrics epoch by epoch: they
#    should agree closely (not bit for bit: the GPU sums in another order).
# It prints what it measured and exits non-zero if a step fails or the metrics part ways.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-$(mktemp -d /tmp/awsnet-gpu-check.XXXXXX)}
mkdir -p "$work"
echo "gpu-check: working in $work"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

cargo build --release --features cuda
awsnet=$PWD/target/release/awsnet

"$awsnet" phantom --out "$work/data" --cases 8 --seed 1 >/dev/null

# 2. Paper geometry, one epoch (the phantoms are smaller than MyoPS slices: the crop fits them).
cat >"$work/paper-step.json" <<EOF
{
  "data": "$work/data",
  "net": "scar_edema",
  "base_filters": 32,
  "geometry": { "crop": [160, 160], "margin": 10, "input": [128, 128] },
  "epochs": 1,
  "batch_size": 16,
  "learning_rate": 0.001,
  "seed": 1
}
EOF
for device in cuda cpu; do
    start=$(date +%s.%N)
    "$awsnet" train --config "$work/paper-step.json" --out "$work/paper-$device" --device "$device" >/dev/null
    end=$(date +%s.%N)
    python3 - "$work/paper-$device/progress.jsonl" "$device" "$start" "$end" <<'PY'
import json, sys
line = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"paper geometry, {sys.argv[2]}: epoch {line['seconds']:.2f} s (process {float(sys.argv[4]) - float(sys.argv[3]):.2f} s), loss {line['loss']:.4f}")
PY
done

# 3. One demo-grid task on each device.
"$awsnet" run jobs/demo.json --data "$work/data" --run "$work/plan" --dry-run --json >"$work/plan.json"
stage=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print(next(s['id'] for s in p['stages'] if s['label']=='casn_coarse'))" "$work/plan.json")
for device in cuda cpu; do
    mkdir -p "$work/demo-$device"
    cp "$work/plan.json" "$work/demo-$device/plan.json"
    start=$(date +%s.%N)
    "$awsnet" task "$work/demo-$device" --stage "$stage" --index 0 --device "$device"
    end=$(date +%s.%N)
    echo "demo casn_coarse task, $device: $(python3 -c "print(f'{$end - $start:.2f}')") s"
done
python3 - "$work/demo-cuda/stages/$stage/0/run/progress.jsonl" "$work/demo-cpu/stages/$stage/0/run/progress.jsonl" <<'PY'
import json, sys
gpu = [json.loads(l) for l in open(sys.argv[1])]
cpu = [json.loads(l) for l in open(sys.argv[2])]
assert len(gpu) == len(cpu), f"{len(gpu)} GPU epochs, {len(cpu)} CPU epochs"
worst = max(abs(g["val_dice"] - c["val_dice"]) for g, c in zip(gpu, cpu))
loss = max(abs(g["loss"] - c["loss"]) / max(abs(c["loss"]), 1e-9) for g, c in zip(gpu, cpu))
print(f"demo task, GPU vs CPU over {len(cpu)} epochs: largest validation Dice difference {worst:.4f}, "
      f"largest relative loss difference {loss:.4f}; final Dice GPU {gpu[-1]['val_dice']:.4f}, CPU {cpu[-1]['val_dice']:.4f}")
if worst > 0.05 or loss > 0.05:
    sys.exit("gpu-check: the GPU run parts ways with the CPU run")
PY
echo "gpu-check: done"
