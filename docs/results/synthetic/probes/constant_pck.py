"""PCK@0.1h of input-independent predictors on the query keypoints: the mean training heatmap
(MSE's optimum for a predictor that cannot localise) and a uniformly random argmax."""
from pathlib import Path

import numpy as np
import torch

from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.data.device_batch import render_heatmap_batch
from daaf.evaluation.attention_metrics import pck

H, W = 128, 64
ds = build_dataset("synthetic", "/work/study/data")
truth = AnnotationStore(Path("/work/study/data/annotations"))
def kps(samples):
    out = []
    for s in samples:
        rec = truth.get(s.path)
        k = rec.keypoints.copy()
        h, w = 128, 64  # every synthetic image is 128 x 64
        k[:, 0] = (k[:, 0] + 0.5) * W / w - 0.5
        k[:, 1] = (k[:, 1] + 0.5) * H / h - 0.5
        out.append(k)
    return np.stack(out)
train, query = kps(ds.train), kps(ds.query)
maps = render_heatmap_batch(torch.from_numpy(train), (H, W), 2.0, 0.3).mean(0).numpy()
c = v = 0
for k in query:
    ci, vi = pck(maps, k, 0.1 * H)
    c, v = c + ci, v + vi
print(f"mean training heatmap as a constant prediction: PCK {c / v:.3f} on {len(query)} queries, peak {maps.max():.3f}")
rng = np.random.default_rng(0)
c = v = 0
for k in query:
    ci, vi = pck(rng.random((17, H, W)), k, 0.1 * H)
    c, v = c + ci, v + vi
print(f"uniformly random argmax: PCK {c / v:.3f}")
