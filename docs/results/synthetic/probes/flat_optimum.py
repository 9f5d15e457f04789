"""Loss of constant (input-independent) PAB predictors on the training targets: the optimum of
the L2-norm loss (eq. 4) vs MSE for a predictor that cannot localise."""
import numpy as np
import torch

from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.config import load_config
from daaf.training.trainer import build_train_set

torch.set_num_threads(1)
cfg = load_config("/work/wt/h12/configs/study/study_daaf_bot.yaml", [
    "data.root=/work/study/data", "data.annotations=/work/study/data/annotations"])
ds = build_dataset("synthetic", cfg.data.root)
ts = build_train_set(cfg, ds)
items = [ts[i] for i in range(0, len(ts), 2)][:64]
raw = {k: torch.stack([it[k] for it in items]) for k in items[0]}
g = prepare_batch(raw, cfg.data, torch.device("cpu"))["heatmaps"].double()  # (N,17,H,W)
N, K, H, W = g.shape
flat = g.flatten(2)  # N,K,P
def l2(p):  # eq. 4 for a constant predictor p (K,P)
    return (flat - p[None]).norm(dim=2).mean().item()
def mse(p):
    return ((flat - p[None]) ** 2).mean().item()
zero = torch.zeros(K, H * W, dtype=torch.double)
mean = flat.mean(0)
# geometric median per keypoint (Weiszfeld)
gm = mean.clone()
for _ in range(50):
    d = (flat - gm[None]).norm(dim=2).clamp_min(1e-9)  # N,K
    w = (1 / d)
    gm = (w[..., None] * flat).sum(0) / w.sum(0)[:, None]
print(f"N={N} targets, map {H}x{W}, sigma {cfg.data.heatmap_sigma}")
print(f"||g|| per keypoint: {flat.norm(dim=2).mean():.3f}")
for name, p in [("zero map", zero), ("mean heatmap (MSE optimum)", mean), ("geometric median (L2 optimum)", gm)]:
    print(f"{name:32s} L2 {l2(p):.4f}  MSE {mse(p):.3e}  peak {p.max():.3f}")
kp = raw["keypoints"].numpy()
vis = kp[..., 2] > 0
print("keypoint location spread (std px), x/y mean over keypoints:",
      np.nanmean([kp[vis[:, k], k, 0].std() for k in range(K)]).round(2),
      np.nanmean([kp[vis[:, k], k, 1].std() for k in range(K)]).round(2))
