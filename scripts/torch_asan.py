"""Independent PyTorch re-implementation of AWSnet's U-Net / ASAN, to compare learning curves.

Mirrors `src/model/{unet,blocks,pam}.rs` (U-Net with 4 max-poolings, filters base*[1,2,4,8,16],
(Conv3x3 no bias -> BN -> ReLU) x2 blocks, nearest x2 -> Conv3x3 -> BN -> ReLU up-sampling,
optional PAM gates on the skips, optional four deep-supervision heads), `src/train/loss.rs`
(soft Dice + ce_weight * CE per head, sum_l alpha_l * L_l), `src/train/epoch.rs` (one Adam step
per batch, validation Dice of one class on the argmax of the final head) and burn's BatchNorm
(momentum 0.1, eps 1e-5, biased running variance) and Adam (betas 0.9/0.999, no weight decay).
Initial weights are PyTorch's defaults, not burn's, unless `--init` is given and DIR has an
`init/` checkpoint (written by the Rust side): then the network starts from exactly those weights
and BatchNorm running statistics (see `load_init`).

It reads the sample directory written by `awsnet export-schedule` (manifest.json plus raw .f32/.u8
files) and trains one network on exactly those batches. Not part of CI or of the Rust build.

    /work/torchenv/bin/python scripts/torch_asan.py DIR --seed S [--threads 2] [--json OUT] [--init]
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LEVELS = 4


class BatchNorm(nn.Module):
    """burn's BatchNorm: batch statistics in training (running variance from the *biased*
    batch variance, momentum 0.1), running statistics in eval mode."""

    def __init__(self, channels, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean, alpha=m)
            self.running_var.mul_(1 - m).add_(var, alpha=m)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class ConvBn(nn.Sequential):
    """Conv3x3 (same padding, no bias) -> BN -> ReLU."""

    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm(cout),
                         nn.ReLU())


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(ConvBn(cin, cout), ConvBn(cout, cout))


class UpConv(nn.Module):
    """Nearest x2 -> Conv3x3 -> BN -> ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBn(cin, cout)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Pam(nn.Module):
    """alpha = sigmoid(BN(psi(ReLU(W_d d + W_u u + b1)))), psi with bias; returns alpha * d.
    Released width: max(half, base) and a BN after each projection."""

    def __init__(self, skip_ch, up_ch, released_base=None):
        super().__init__()
        inner = max(skip_ch // 2, 1)
        if released_base is not None:
            inner = max(inner, released_base)
        self.skip_proj = nn.Conv2d(skip_ch, inner, 1, bias=False)
        self.up_proj = nn.Conv2d(up_ch, inner, 1)
        self.psi = nn.Conv2d(inner, 1, 1)
        self.norm = BatchNorm(1)
        self.proj_norms = (nn.ModuleList([BatchNorm(inner), BatchNorm(inner)])
                           if released_base is not None else None)

    def forward(self, skip, up):
        d, u = self.skip_proj(skip), self.up_proj(up)
        if self.proj_norms is not None:
            d, u = self.proj_norms[0](d), self.proj_norms[1](u)
        alpha = torch.sigmoid(self.norm(self.psi(F.relu(d + u))))
        return skip * alpha


class UNet(nn.Module):
    def __init__(self, in_channels, out_channels, base_filters=32, pam=False,
                 pam_released=False, deep_supervision=False):
        super().__init__()
        f = [base_filters << k for k in range(LEVELS + 1)]
        self.encoder = nn.ModuleList(
            DoubleConv(in_channels if k == 0 else f[k - 1], f[k]) for k in range(LEVELS + 1))
        levels = list(reversed(range(LEVELS)))  # decoder stage i rebuilds level LEVELS-1-i
        self.ups = nn.ModuleList(UpConv(f[k + 1], f[k]) for k in levels)
        base = base_filters if pam_released else None
        self.gates = nn.ModuleList(Pam(f[k], f[k], base) for k in levels) if pam else None
        self.decoder = nn.ModuleList(DoubleConv(2 * f[k], f[k]) for k in levels)
        head_levels = levels if deep_supervision else [0]
        self.heads = nn.ModuleList(nn.Conv2d(f[k], out_channels, 1) for k in head_levels)

    def forward(self, x):
        """Logits of every head, coarse to fine, each at the input size; the last predicts."""
        h, w = x.shape[2:]
        skips = []
        for k, block in enumerate(self.encoder):
            x = block(x)
            if k < LEVELS:
                skips.append(x)
                x = F.max_pool2d(x, 2, 2)
        stages = []
        for i, (up, block) in enumerate(zip(self.ups, self.decoder)):
            u = up(x)
            skip = skips.pop()
            if self.gates is not None:
                skip = self.gates[i](skip, u)
            x = block(torch.cat([skip, u], dim=1))
            stages.append(x)
        outs = []
        for head, feat in zip(self.heads, stages[LEVELS - len(self.heads):]):
            logits = head(feat)
            if logits.shape[2:] != (h, w):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)
            outs.append(logits)
        return outs


# Rust checkpoint path (burn's module visiting order, `src/train/checkpoint.rs`) -> this module's
# state_dict key. burn's BatchNorm gamma/beta are torch's weight/bias; an Option is transparent
# in burn's paths and a tuple's members are named 0, 1 (hence `projection_norms.0.gamma`).
_BN = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean",
       "running_var": "running_var"}
_CONV_BN = {"first": "0", "second": "1"}


def torch_key(path):
    """The state_dict key of the Rust tensor `path`, or None if it has no counterpart here."""
    m = re.fullmatch(r"(encoder|decoder)\.(\d+)\.(first|second)\.(conv\.weight|norm\.(\w+))", path)
    if m:
        block, i, which, leaf, bn = m.groups()
        tail = "0.weight" if bn is None else f"1.{_BN[bn]}" if bn in _BN else None
        return tail and f"{block}.{i}.{_CONV_BN[which]}.{tail}"
    m = re.fullmatch(r"ups\.(\d+)\.conv\.(conv\.weight|norm\.(\w+))", path)
    if m:
        i, leaf, bn = m.groups()
        tail = "0.weight" if bn is None else f"1.{_BN[bn]}" if bn in _BN else None
        return tail and f"ups.{i}.conv.{tail}"
    m = re.fullmatch(r"gates\.(\d+)\.(skip_proj\.weight|up_proj\.(?:weight|bias)|"
                     r"psi\.(?:weight|bias)|norm\.(\w+)|projection_norms\.([01])\.(\w+))", path)
    if m:
        i, leaf, bn, j, pbn = m.groups()
        if bn is not None:
            return f"gates.{i}.norm.{_BN[bn]}" if bn in _BN else None
        if pbn is not None:
            return f"gates.{i}.proj_norms.{j}.{_BN[pbn]}" if pbn in _BN else None
        return f"gates.{i}.{leaf}"
    m = re.fullmatch(r"heads\.(\d+)\.(weight|bias)", path)
    if m:
        return f"heads.{m.group(1)}.{m.group(2)}"
    return None


def load_init(model, init_dir, model_config):
    """Copies the Rust checkpoint in `init_dir` (checkpoint.json's tensor table, model.bin's f32
    LE values in that order) into `model`. Refuses, naming the tensor, any path without a
    counterpart, any shape mismatch, any tensor given twice and any parameter or buffer left
    without a value; returns (tensors, values) loaded."""
    with open(os.path.join(init_dir, "checkpoint.json")) as f:
        ck = json.load(f)
    with open(os.path.join(init_dir, "model.bin"), "rb") as f:
        raw = f.read()
    hashes = os.path.join(init_dir, "manifest.json")
    if os.path.exists(hashes):
        with open(hashes) as f:
            expected = json.load(f).get("sha256", {})
        for name in ("checkpoint.json", "model.bin"):
            if name in expected:
                with open(os.path.join(init_dir, name), "rb") as f:
                    got = hashlib.sha256(f.read()).hexdigest()
                if got != expected[name]:
                    raise SystemExit(f"init: {init_dir}/{name}: sha256 {got} != manifest's "
                                     f"{expected[name]}")
    config = ck.get("config") or {}
    differ = {k: (config[k], model_config[k]) for k in config.keys() & model_config.keys()
              if config[k] != model_config[k]}
    if differ:
        raise SystemExit(f"init: checkpoint config differs from the manifest's model "
                         f"(checkpoint, manifest): {differ}")
    table = ck["tensors"]
    total = sum(int(np.prod(t["shape"], dtype=np.int64)) for t in table)
    if len(raw) != 4 * total:
        raise SystemExit(f"init: model.bin has {len(raw)} bytes, the tensor table needs "
                         f"{4 * total} ({total} f32)")
    values = np.frombuffer(raw, dtype="<f4")
    state = model.state_dict()
    problems, seen, offset, faulty = [], {}, 0, set()
    for t in table:
        path, shape = t["path"], [int(d) for d in t["shape"]]
        n = int(np.prod(shape, dtype=np.int64))
        chunk, offset = values[offset:offset + n], offset + n
        key = torch_key(path)
        if key is None or key not in state:
            problems.append(f"{path} {shape}: no corresponding torch tensor"
                            + (f" (would be {key})" if key else ""))
            continue
        if key in seen:
            problems.append(f"{path}: maps to {key}, already given by {seen[key]}")
            continue
        if list(state[key].shape) != shape:
            problems.append(f"{path} {shape}: torch {key} has shape {list(state[key].shape)}")
            faulty.add(key)
            continue
        seen[key] = path
        with torch.no_grad():
            state[key].copy_(torch.from_numpy(chunk.reshape(shape).copy()))
    for key, tensor in state.items():
        if key not in seen and key not in faulty:
            problems.append(f"torch {key} {list(tensor.shape)}: no value in the checkpoint")
    if problems:
        raise SystemExit(f"init: {init_dir} does not fit the model:\n  " + "\n  ".join(problems))
    return len(seen), total


def soft_dice(logits, target, dice_smooth=1e-5, dice_background=False, dice_sum=False,
              dice_batch=False, **_):
    """1 - (2 sum p g + eps) / (sum p + sum g + eps) per sample and class (per class over the
    whole batch with dice_batch), mean over the counted classes (and samples), or the sum over
    counted classes with dice_sum."""
    classes = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    g = F.one_hot(target, classes).permute(0, 3, 1, 2).to(p.dtype)
    dims = (0, 2, 3) if dice_batch else (2, 3)
    inter, total = (p * g).sum(dims), (p + g).sum(dims)
    dice = (2 * inter + dice_smooth) / (total + dice_smooth)
    first = int(not dice_background and classes > 1)
    loss = 1 - dice[..., first:].mean()
    return loss * (classes - first) if dice_sum else loss


def hybrid(logits, target, cfg):
    loss = soft_dice(logits, target, **cfg)
    if cfg.get("ce_weight", 0.25) != 0:
        loss = loss + cfg.get("ce_weight", 0.25) * F.cross_entropy(logits, target)
    return loss


def deep_supervision(heads, target, alpha, cfg):
    assert len(heads) == len(alpha), "one supervision weight per head"
    return sum(a * hybrid(h, target, cfg) for h, a in zip(heads, alpha))


def load_set(root, name, meta):
    n, c, h, w = meta["n"], meta["channels"], meta["height"], meta["width"]
    x = np.fromfile(os.path.join(root, f"{name}.images.f32"), dtype="<f4")
    y = np.fromfile(os.path.join(root, f"{name}.classes.u8"), dtype=np.uint8)
    assert x.size == n * c * h * w and y.size == n * h * w, f"{name}: wrong file sizes"
    return (torch.from_numpy(x.reshape(n, c, h, w).copy()),
            torch.from_numpy(y.reshape(n, h, w).astype(np.int64)))


def dice(inter, total):
    return 1.0 if total == 0 else 2.0 * inter / total


@torch.no_grad()
def evaluate(model, x, y, cases, cls, batch_size, device):
    """Dice of class `cls`: per-slice mean, pooled over all pixels, per-case mean."""
    model.eval()
    scores, all_i, all_s, per_case = [], 0, 0, {}
    for start in range(0, len(x), max(batch_size, 1)):
        pred = model(x[start:start + batch_size].to(device))[-1].argmax(1).cpu()
        for j, (q, t) in enumerate(zip(pred == cls, y[start:start + batch_size] == cls)):
            i, s = int((q & t).sum()), int(q.sum() + t.sum())
            scores.append(dice(i, s))
            all_i, all_s = all_i + i, all_s + s
            acc = per_case.setdefault(cases[start + j], [0, 0])
            acc[0], acc[1] = acc[0] + i, acc[1] + s
    return {"per_slice": sum(scores) / max(len(scores), 1), "pooled": dice(all_i, all_s),
            "per_case": sum(dice(i, s) for i, s in per_case.values()) / max(len(per_case), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the curves here")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--init", action="store_true",
                    help="start from the Rust initial weights in DIR/init/ when it exists")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    began = time.perf_counter()
    with open(os.path.join(args.dir, "manifest.json")) as f:
        man = json.load(f)
    sets = man["sets"]
    device = torch.device(args.device)
    model = UNet(**man["model"])
    init_dir = os.path.join(args.dir, "init")
    if args.init and os.path.isdir(init_dir):
        tensors, values = load_init(model, init_dir, man["model"])
        params = sum(p.numel() for p in model.parameters())
        print(f"init: {tensors} tensors, {values} values from {init_dir} (all "
              f"{len(model.state_dict())} torch parameters and buffers; {params} parameters)",
              flush=True)
    elif args.init:
        raise SystemExit(f"init: {init_dir} not found (written by `awsnet export-schedule`)")
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=man["learning_rate"], betas=(0.9, 0.999),
                           eps=man["epsilon"], weight_decay=0.0)
    val_x, val_y = load_set(args.dir, "validation", sets["validation"])
    cls, bs = man["scored_class"], man["batch_size"]
    history = []
    for number, epoch in enumerate(man["epochs"], 1):
        # Optional per-epoch overrides (learning_rate, alpha, loss keys); the manifest's otherwise.
        lr = epoch.get("learning_rate", man["learning_rate"])
        alpha = epoch.get("alpha", man["alpha"])
        cfg = {**man["loss"], **{k: epoch[k] for k in man["loss"] if k in epoch}}
        for group in opt.param_groups:
            group["lr"] = lr
        x_all, y_all = load_set(args.dir, epoch["set"], sets[epoch["set"]])
        assert sum(epoch["batches"]) == len(x_all), f"{epoch['set']}: batches != samples"
        model.train()
        total, start = 0.0, 0
        for size in epoch["batches"]:
            x = x_all[start:start + size].to(device)
            y = y_all[start:start + size].to(device)
            start += size
            loss = deep_supervision(model(x), y, alpha, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        mean_loss = total / max(len(epoch["batches"]), 1)
        v = evaluate(model, val_x, val_y, sets["validation"]["cases"], cls, bs, device)
        history.append({"epoch": number, "loss": mean_loss, "val_per_slice": v["per_slice"],
                        "val_pooled": v["pooled"], "val_per_case": v["per_case"]})
        print(f"epoch {number:4d}  loss {mean_loss:.6f}  val dice per-slice {v['per_slice']:.4f}"
              f"  pooled {v['pooled']:.4f}  per-case {v['per_case']:.4f}", flush=True)
    test_x, test_y = load_set(args.dir, "test", sets["test"])
    t = evaluate(model, test_x, test_y, sets["test"]["cases"], cls, bs, device)
    print(f"test        dice per-slice {t['per_slice']:.4f}  pooled {t['pooled']:.4f}"
          f"  per-case {t['per_case']:.4f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"epochs": history, "test": t, "seconds": time.perf_counter() - began},
                      f, indent=1)


if __name__ == "__main__":
    main()
