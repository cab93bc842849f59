#!/usr/bin/env bash
# What a DAS epoch costs beyond its children's training on Slurm, in `arrays` and `held` mode.
#
#   scripts/slurm-das-overhead.sh [WORKDIR]      (needs a Slurm that answers, e.g. the dev
#                                                 cluster of scripts/slurm-dev-cluster.sh)
#   SCALE=paper scripts/slurm-das-overhead.sh    the paper's network (base 32, 128×128 input,
#                                                 batch 16), 3 auto-weighted epochs
#
# One method with K = 1 (two children per epoch, one per net, which a 2-core node runs side by
# side), 6 auto-weighted epochs at the demo's scale on 8 phantom cases. Per auto-weighted epoch
# t it takes the wall time from update[t-1]'s manifest to update[t]'s, subtracts the slower
# child's own epoch time (from its result.json), and prints the median over epochs for each
# mode, in seconds and as a share of a child epoch.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-$(mktemp -d /tmp/awsnet-das-overhead.XXXXXX)}
mkdir -p "$work"
cargo build --release
awsnet=$PWD/target/release/awsnet
[ -d "$work/data" ] || "$awsnet" phantom --out "$work/data" --cases 8 --seed 1 >/dev/null

if [ "${SCALE:-demo}" = paper ]; then
    scale='"base_filters": 32, "crop": [160, 160], "margin": 10, "input": [128, 128], "batch_size": 16, "epochs": 5'
else
    scale='"base_filters": 8, "crop": [128, 128], "margin": 8, "input": [64, 64], "batch_size": 8, "epochs": 8'
fi
cat >"$work/job.json" <<EOF
{
  "name": "das-overhead",
  "seed": 1,
  "data": { "root": "data", "test_cases": 2, "validation_cases": 2 },
  "scale": { $scale, "learning_rate": 0.002 },
  "networks": { "casn_coarse": { "epochs": 1 }, "casn_fine": { "epochs": 1 } },
  "weighting": { "epochs_fixed": 2, "samples": 1 },
  "methods": [ { "name": "pam_das", "weighting": "das" } ],
  "backend": { "kind": "slurm", "cpus": 1, "mem": "4G",
               "reducer": { "cpus": 1, "mem": "1G" } }
}
EOF

for mode in arrays held; do
    rm -rf "$work/$mode"
    "$awsnet" run "$work/job.json" --run "$work/$mode" --set "backend.das_mode=$mode" >/dev/null
    name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['job_name'])" "$work/$mode/slurm/jobs.json")
    while [ -n "$(squeue -h --name "$name" -t PENDING,RUNNING,CONFIGURING,COMPLETING,REQUEUED)" ]; do
        sleep 1
    done
    [ -f "$work/$mode/results/summary.json" ] || { echo "$mode: the run did not finish" >&2; exit 1; }
done
cmp "$work/arrays/results/summary.json" "$work/held/results/summary.json" &&
    echo "arrays and held: summary.json identical"

python3 - "$work" <<'PY'
import json, os, statistics, sys
work = sys.argv[1]
for mode in ["arrays", "held"]:
    run = os.path.join(work, mode)
    plan = json.load(open(os.path.join(run, "plan.json")))
    def stage(kind, epoch):
        return next(s for s in plan["stages"]
                    if s["work"]["kind"] == kind and s["work"]["epoch"] == epoch)
    epochs = sorted({s["work"]["epoch"] for s in plan["stages"] if s["work"]["kind"] == "update"})
    beyond, child = [], []
    for prev, t in zip(epochs, epochs[1:]):
        done = lambda s, i: os.path.getmtime(os.path.join(run, "stages", s["id"], str(i), "done.json"))
        wall = done(stage("update", t), 0) - done(stage("update", prev), 0)
        sample = stage("sample", t)
        seconds = max(
            json.load(open(os.path.join(run, "stages", sample["id"], str(i), "result.json")))["record"]["seconds"]
            for i in range(sample["tasks"]))
        beyond.append(wall - seconds)
        child.append(seconds)
    b, c = statistics.median(beyond), statistics.median(child)
    print(f"{mode:6}: {len(beyond)} epochs, child epoch {c:.2f} s, wall beyond it {b:.2f} s "
          f"({100 * b / c:.0f} % of a child epoch)")
PY
