"""Per loss term: gradient norm on the shared backbone (layer4) and on the PAB decoder, at a
study checkpoint (or at initialisation with 'init'), on one training batch of 32."""
import sys
from pathlib import Path

import torch
from torch.utils.data import default_collate

from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.config import config_from_dict, load_config
from daaf.training.losses import build_criterion
from daaf.models import build_model
from daaf.training.trainer import build_train_set, load_checkpoint, seed_everything

torch.set_num_threads(1)
seed_everything(0)
if sys.argv[1] == "init":
    cfg = load_config("/work/wt/h12/configs/study/study_daaf_bot.yaml", [
        "data.root=/work/study/data", "data.annotations=/work/study/data/annotations"])
    state = None
else:
    state = load_checkpoint(Path(sys.argv[1]))
    cfg = config_from_dict(state["config"])
ds = build_dataset("synthetic", cfg.data.root)
ts = build_train_set(cfg, ds)
by_pid = {}
for i, sample in enumerate(ts.samples):
    by_pid.setdefault(sample.pid, []).append(i)
chosen = [i for ids in list(by_pid.values())[:8] for i in ids[:4]]  # a P x K batch: 8 x 4
batch = prepare_batch(default_collate([ts[i] for i in chosen]), cfg.data, torch.device("cpu"))
model = build_model(cfg, ds.num_train_pids).train()
crit = build_criterion(cfg, ds.num_train_pids, model.feat_dim)
if state is not None:
    model.load_state_dict(state["model"])
    crit.load_state_dict(state["criterion"])
out = model(batch["images"])
losses = crit(out, batch)
shared = [p for p in model.backbone.layer4.parameters()]
dec = list(model.pab.parameters())
wd = cfg.optim.weight_decay
norm = lambda ps: torch.sqrt(sum((p.detach() ** 2).sum() for p in ps)).item()
print(f"{sys.argv[1]}: weighted terms " + " ".join(f"{k}={v.item():.4g}" for k, v in losses.items()))
for name, value in losses.items():
    g_shared = torch.autograd.grad(value, shared, retain_graph=True, allow_unused=True)
    g_dec = torch.autograd.grad(value, dec, retain_graph=True, allow_unused=True)
    gs = norm([g for g in g_shared if g is not None]) if any(g is not None for g in g_shared) else 0.0
    gd = norm([g for g in g_dec if g is not None]) if any(g is not None for g in g_dec) else 0.0
    print(f"  {name:8s} |grad| on layer4 {gs:.3e}   on the PAB decoder {gd:.3e}")
print(f"  weight decay term wd*|w|: layer4 {wd * norm(shared):.3e}   PAB decoder {wd * norm(dec):.3e}")
print(f"  PAB output peak (mean over batch) {out.parts.flatten(1).max(1).values.mean():.3f}")
