"""Train the same ASAN with awsnet and with an independent PyTorch implementation
(scripts/torch_asan.py) on the same samples and batches, and print both validation curves and
test Dice side by side, per seed. Not part of CI: it needs PyTorch.

For each seed: `awsnet export-schedule` writes the config's exact batches (augmented as awsnet
augments them); `awsnet train` trains on them; `awsnet diagnose --deploy latest` scores the last
epoch on the test cases; torch_asan.py trains on the exported batches. Both score the last
epoch's full-resolution head in eval mode, Dice of the pathology class pooled per case.

    python3 scripts/torch_parity.py --data demo-data --test-cases A,B,C --validation-cases D,E \
        --python /path/to/venv/bin/python [--seeds 1,2,3] [--set key=json ...]

--set overrides fields of the train config (JSON values, dotted keys): e.g.
`--set epoch_length='"pass"' --set foreground_oversampling=0`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def config(args, seed):
    cfg = {
        "data": os.path.abspath(args.data),
        "net": args.net,
        "base_filters": args.base_filters,
        "geometry": {"crop": [128, 128], "margin": 8, "input": [64, 64]},
        "epochs": args.epochs,
        "batch_size": 8,
        "learning_rate": args.lr,
        "seed": seed,
        "validation_cases": args.validation_cases.split(","),
    }
    if args.cases:
        cfg["cases"] = args.cases.split(",")
    for item in args.set:
        key, value = item.split("=", 1)
        node = cfg
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = json.loads(value)
    return cfg


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def awsnet(args, work, seed):
    cfg_path = os.path.join(work, f"config-{seed}.json")
    with open(cfg_path, "w") as f:
        json.dump(config(args, seed), f)
    export = os.path.join(work, f"export-{seed}")
    run([args.awsnet, "export-schedule", "--config", cfg_path, "--out", export,
         "--test-cases", args.test_cases])
    out = os.path.join(work, f"run-{seed}")
    run([args.awsnet, "train", "--config", cfg_path, "--out", out])
    curve = [json.loads(line) for line in open(os.path.join(out, "progress.jsonl"))]
    diag = json.loads(run([args.awsnet, "diagnose", out, "--deploy", "latest", "--test-cases",
                           args.test_cases, "--json"]).stdout)
    test = diag["diagnosis"]["modes"][0]["test"]
    return export, [r["val_dice_per_case"] for r in curve], test["per_case"]


def torch(args, export, seed, work):
    out = os.path.join(work, f"torch-{seed}.json")
    run([args.python, os.path.join(HERE, "torch_asan.py"), export, "--seed", str(seed),
         "--threads", str(args.threads), "--json", out])
    with open(out) as f:
        result = json.load(f)
    return [e["val_per_case"] for e in result["epochs"]], result["test"]["per_case"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--test-cases", required=True)
    ap.add_argument("--validation-cases", required=True)
    ap.add_argument("--cases", help="training and validation cases (default: all others)")
    ap.add_argument("--net", default="scar")
    ap.add_argument("--base-filters", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--python", default=sys.executable, help="a Python with torch and numpy")
    ap.add_argument("--awsnet", default=os.path.join(ROOT, "target", "release", "awsnet"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--json", help="write every curve here")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="awsnet-parity-")
    os.makedirs(work, exist_ok=True)
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        export, ours, our_test = awsnet(args, work, seed)
        theirs, their_test = torch(args, export, seed, work)
        results[seed] = {"awsnet": ours, "torch": theirs,
                         "test": {"awsnet": our_test, "torch": their_test}}
        print(f"seed {seed}: validation Dice per case, epoch by epoch (awsnet | torch)")
        for e, (a, b) in enumerate(zip(ours, theirs), 1):
            print(f"  epoch {e:>3}  {a:.3f} | {b:.3f}")
        print(f"  test Dice per case, last epoch: awsnet {our_test:.3f} | torch {their_test:.3f}",
              flush=True)
    n = len(results)
    mean = lambda k: sum(r["test"][k] for r in results.values()) / n
    last = lambda k: sum(r[k][-1] for r in results.values()) / n
    area = lambda k: sum(sum(r[k]) / len(r[k]) for r in results.values()) / n
    print(f"over {n} seeds: test Dice awsnet {mean('awsnet'):.3f} | torch {mean('torch'):.3f}; "
          f"last validation {last('awsnet'):.3f} | {last('torch'):.3f}; "
          f"mean over epochs {area('awsnet'):.3f} | {area('torch'):.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
