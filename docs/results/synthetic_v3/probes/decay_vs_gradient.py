"""Study v3 probe: for each part of a DAAF checkpoint, the norm of the training loss's gradient
beside the norm of Adam's coupled weight-decay term (optim.weight_decay x weights) that is
added to it, on a few training batches. Where the decay term is the larger, Adam's update
follows the decay, not the loss.

    python docs/results/synthetic_v3/probes/decay_vs_gradient.py CHECKPOINT DATA [BATCHES]
"""

import sys
from pathlib import Path

import torch

from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.config import recorded_config
from daaf.training.checkpoint import load_checkpoint
from daaf.training.losses import build_criterion
from daaf.models import build_model
from daaf.training.trainer import build_train_loader

PARTS = {
    "backbone stem + layer1": ("backbone.stem", "backbone.layer1"),
    "backbone layer2-3": ("backbone.layer2", "backbone.layer3"),
    "backbone layer4": ("backbone.layer4",),
    "ReID head": ("head",),
    "HAB encoder (copy of layer2-4)": ("hab.encoder",),
    "HAB decoder + head": ("hab.decoder", "hab.head"),
    "PAB decoders + heads": ("pab.",),
}

path, data = Path(sys.argv[1]), Path(sys.argv[2])
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 4
state = load_checkpoint(path)
cfg = recorded_config(state["config"], path)
cfg.data.root, cfg.data.annotations, cfg.data.workers = str(data), str(data / "annotations"), 0
cfg.data.dataset = "synthetic"
dataset = build_dataset("synthetic", data)
model = build_model(cfg, state["num_classes"])
model.load_state_dict(state["model"])
model.train()
criterion = build_criterion(cfg, state["num_classes"], model.feat_dim)
criterion.load_state_dict(state["criterion"])
loader, _, sampler = build_train_loader(cfg, dataset, torch.device("cpu"))
sampler.set_epoch(0)
decay = cfg.optim.weight_decay
sums = {name: [0.0, 0.0] for name in PARTS}
for index, batch in zip(range(batches), loader):
    batch = prepare_batch(batch, cfg.data, torch.device("cpu"), criterion.target_stride)
    model.zero_grad()
    sum(criterion(model(batch["images"]), batch).values()).backward()
    for name, prefixes in PARTS.items():
        params = [p for n, p in model.named_parameters() if n.startswith(prefixes)]
        if not params:
            continue
        grad = torch.cat([p.grad.flatten() for p in params if p.grad is not None]).norm()
        weights = torch.cat([p.detach().flatten() for p in params]).norm()
        sums[name][0] += grad.item() / batches
        sums[name][1] += decay * weights.item() / batches
print(f"{path} (step {state['step']}), weight decay {decay:g}, {batches} batches")
print(f"{'part':32s} {'loss gradient':>14s} {'decay term':>12s} {'gradient / decay':>17s}")
for name, (grad, term) in sums.items():
    if term:
        print(f"{name:32s} {grad:14.4g} {term:12.4g} {grad / term:17.3g}")
