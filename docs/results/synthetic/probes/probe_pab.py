"""PAB collapse probe: overfit 8 synthetic images with the PAB loss, under variants.

usage: probe_pab.py VARIANT STEPS   (variants below); prints PCK / peak / loss every 25 steps.
"""

import sys
import time

import numpy as np
import torch

from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.evaluation.attention_metrics import pck
from daaf.config import load_config
from daaf.training.losses import build_criterion
from daaf.models import build_model
from daaf.training.schedule import build_optimizer
from daaf.training.trainer import build_train_set, seed_everything

torch.set_num_threads(1)
CFG = "/work/wt/h12/configs/study/study_daaf_bot.yaml"
BASE = ["data.root=/work/study/data", "data.annotations=/work/study/data/annotations",
        "train.device=cpu", "data.erasing_prob=0", "data.flip_prob=0"]

VARIANTS = {
    # name: (extra overrides, loss terms used)
    "pab_l2_w1": (["loss.pab_weight=1.0", "optim.weight_decay=0"], ("pab",)),
    "pab_l2_paper": ([], ("pab",)),  # lambda 0.003, wd 5e-4: PAB alone at the paper's scale
    "pab_l2_nowd": (["optim.weight_decay=0"], ("pab",)),
    "pab_mse_w1": (["loss.branch_loss=mse", "loss.pab_weight=1.0"], ("pab",)),
    "full_paper": ([], ("id", "triplet", "center", "hab", "pab")),
    "full_nowd_dec": ([], ("id", "triplet", "center", "hab", "pab")),  # set below
    "full_sigma4": (["data.heatmap_sigma=4.0"], ("id", "triplet", "center", "hab", "pab")),
    "full_official": (["loss.branch_loss=mse", "loss.hab_weight=20", "loss.pab_weight=65"],
                      ("id", "triplet", "center", "hab", "pab")),
    "full_pab30": (["loss.pab_weight=30"], ("id", "triplet", "center", "hab", "pab")),
    "full_w1": (["loss.pab_weight=1.0", "loss.hab_weight=1.0"],
                ("id", "triplet", "center", "hab", "pab")),
}


def batch_pck(parts, kps, height):
    c = v = 0
    for i in range(parts.shape[0]):
        ci, vi = pck(parts[i].detach().numpy(), kps[i].numpy(), 0.1 * height)
        c, v = c + ci, v + vi
    return c / max(v, 1)


def main(variant, steps, n=8):
    extra, terms = VARIANTS[variant]
    cfg = load_config(CFG, BASE + extra)
    seed_everything(0)
    dataset = build_dataset(cfg.data.dataset, cfg.data.root)
    train_set = build_train_set(cfg, dataset)
    # 8 images of 2 identities per ... : first n*4 samples, take every 4th for variety
    items = [train_set[i] for i in range(0, 4 * n, 4)][:n]
    raw = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    batch = prepare_batch(raw, cfg.data, torch.device("cpu"))
    kps = raw["keypoints"]
    model = build_model(cfg, dataset.num_train_pids)
    crit = build_criterion(cfg, dataset.num_train_pids, model.feat_dim)
    params = list(model.parameters())
    if variant == "full_nowd_dec":
        branch = [p for m in (model.hab, model.pab) for p in m.parameters()]
        ids = {id(p) for p in branch}
        rest = [p for p in params if id(p) not in ids]
        opt = torch.optim.Adam([{"params": rest}, {"params": branch, "weight_decay": 0.0}],
                               lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    else:
        opt = build_optimizer(params, cfg.optim)
    model.train()
    h = cfg.data.height
    t0 = time.time()
    for step in range(steps + 1):
        out = model(batch["images"])
        losses = crit(out, batch)
        total = sum(losses[t] for t in terms if t in losses)
        if step % 25 == 0 or step == steps:
            # gradient norms on the shared backbone (last block) and on the PAB decoder, per term
            report = {}
            if step in (0, steps):
                for t in ("id", "triplet", "pab", "hab"):
                    if t not in losses:
                        continue
                    g = torch.autograd.grad(losses[t], [model.backbone.layer4[-1].conv2.weight,
                                                        model.pab.stacks[0].layers[0].weight],
                                            retain_graph=True, allow_unused=True)
                    report[t] = [float(x.norm()) if x is not None else 0.0 for x in g]
            parts = out.parts
            dec_w = float(model.pab.stacks[0].layers[0].weight.detach().norm())
            print(f"{variant} step {step} {time.time() - t0:.0f}s "
                  f"loss " + " ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
                  + f" | PCK {batch_pck(parts, kps, h):.3f} peak {float(parts.max()):.3f}"
                  f" mean {float(parts.mean()):.4f} |dec0| {dec_w:.3f}"
                  + (f" grads[layer4,dec0] {report}" if report else ""), flush=True)
        if step == steps:
            break
        opt.zero_grad()
        total.backward()
        opt.step()
    torch.save({"parts": out.parts.detach()[:2], "heat": batch["heatmaps"][:2],
                "images": raw["images"][:2], "kps": kps[:2]}, f"/work/study/probe_{variant}.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
