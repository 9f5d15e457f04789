"""Embeddings of a list of samples with an eval-mode model (optionally averaged with the flip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from daaf.data.datasets import Sample
from daaf.data.train_set import read_rgb
from daaf.data.transforms import eval_transform


class EvalSet(Dataset):
    """Resized, normalised images of ``samples`` (meta: height, width, pixel_mean, pixel_std)."""

    def __init__(self, samples: list[Sample], image_dir: Path, meta: dict) -> None:
        self.samples, self.image_dir, self.meta = samples, Path(image_dir), meta

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = read_rgb(self.image_dir / self.samples[index].path)
        m = self.meta
        return eval_transform(image, m["height"], m["width"], m["pixel_mean"], m["pixel_std"])


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    samples: list[Sample],
    image_dir: Path,
    meta: dict,
    device: torch.device,
    batch_size: int = 128,
    workers: int = 2,
    flip: bool = False,
    desc: str = "features",
) -> np.ndarray:
    """float32 (N, D) embeddings; with ``flip`` the mean of the image's and its mirror's."""
    loader = DataLoader(
        EvalSet(samples, image_dir, meta),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    feats = []
    for images in tqdm(loader, desc=desc, leave=False):
        images = images.to(device, non_blocking=True)
        out = model(images)
        if flip:
            out = (out + model(images.flip(3))) / 2
        feats.append(out.float().cpu())
    return (
        torch.cat(feats).numpy()
        if feats
        else np.zeros((0, meta.get("embedding_dim", 0)), np.float32)
    )
