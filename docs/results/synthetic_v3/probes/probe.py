"""Study v3's exploration probe: train one config with overrides on the study's data, then print
the PAB's PCK and the HAB's IoU on the queries (against the true keypoints and masks), the
constant map's PCK, mAP and Rank-1, and the last branch-health measurement, as one JSON line.

    python docs/results/synthetic_v3/probes/probe.py CONFIG DATA OUT [KEY=VALUE ...]
"""

import json
import sys
from pathlib import Path

import torch

from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.data.synthetic.stats import summarize
from daaf.evaluation.attention_metrics import branch_accuracy
from daaf.evaluation.evaluate import evaluate_model
from daaf.training.branch_health import last_measurement
from daaf.training.checkpoint import trained_epochs
from daaf.config import load_config
from daaf.models import load_inference_model
from daaf.training.export import export_model
from daaf.training.trainer import train

config, data, out, *overrides = sys.argv[1:]
data, out = Path(data), Path(out)
cfg = load_config(config, [f"data.root={data}", f"data.annotations={data / 'annotations'}",
                           "data.dataset=synthetic", "train.device=cpu", *overrides])
last = out / "checkpoints" / "last.pt"
if not (last.is_file() and trained_epochs(last) >= cfg.train.epochs):
    train(cfg, out, resume=last.is_file())
dataset = build_dataset("synthetic", data)
truth = AnnotationStore(data / "annotations")
device = torch.device("cpu")
trained, meta = load_inference_model(last, device)
accuracy = branch_accuracy(trained, dataset, truth, meta, dataset.query, device)
row = {"run": str(out), "overrides": overrides, "pab_pck": accuracy.pck, "hab_iou": accuracy.mask_iou,
       "constant_pck": summarize(data)["constant_map_pck"]}
if cfg.loss.id_weight > 0 or cfg.loss.triplet_weight > 0:
    if not (out / "export" / "model_state.pt").is_file():
        export_model(last, out / "export")
    model, meta = load_inference_model(out / "export", device)
    metrics = evaluate_model(model, meta, dataset, out / "eval", device, model_name=out.name)
    plain = metrics.iloc[0].to_dict()
    row.update(mAP=plain.get("mAP"), rank1=plain.get("rank1"), mINP=plain.get("mINP"))
row["health"] = {k: v for k, v in last_measurement(out / "metrics.jsonl").items()
                 if k.startswith(("health/", "weight/", "step"))}
print(json.dumps(row))
with open(out.parent / "probes.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
