#!/usr/bin/env bash
# The whole pipeline on the demo data, step by step, until the grid runner does it in one command:
# generate phantoms, train the four networks (jobs/demo/*.json), segment the cases, evaluate.
# Usage: scripts/demo-pipeline.sh [RESULTS_DIR]   (default results/demo-pipeline)
set -euo pipefail
cd "$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
out=${1:-results/demo-pipeline}
awsnet() { cargo run --quiet --release -- "$@"; }

if [ ! -d demo-data ]; then
    awsnet phantom --out demo-data --cases 6 --seed 1
fi
for net in casn_coarse casn_fine scar scar_edema; do
    if [ -e "$out/model/$net/checkpoint_latest.json" ]; then
        awsnet train --config "jobs/demo/$net.json" --out "$out/model/$net" --resume
    else
        awsnet train --config "jobs/demo/$net.json" --out "$out/model/$net"
    fi
done
awsnet predict --model "$out/model" --cases demo-data --out "$out/pred"
awsnet eval --pred "$out/pred" --gt demo-data --json "$out/eval.json" --csv "$out/eval.csv"
