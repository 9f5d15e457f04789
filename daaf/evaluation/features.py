"""Embeddings of a list of samples with an eval-mode model (optionally averaged with the flip)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from daaf.data.datasets import Sample
from daaf.data.device_batch import normalize_images
from daaf.data.images import read_rgb
from daaf.data.loader import build_loader
from daaf.data.transforms import eval_resize
from daaf.evaluation.metrics import require_finite
from daaf.models.meta import ModelMeta
from daaf.utils.device import resolve_device


@dataclass(frozen=True)
class FeatureOptions:
    """How embeddings are extracted: images per batch, data-loader worker processes, and whether
    each embedding is averaged with its mirror image's."""

    batch_size: int = 128
    workers: int = 2
    flip: bool = False


class EvalSet(Dataset):
    """Resized uint8 (H, W, 3) images of ``samples`` (meta: height, width); normalised on the
    device by ``extract_features``."""

    def __init__(self, samples: list[Sample], image_dir: Path, meta: ModelMeta) -> None:
        self.samples, self.image_dir, self.meta = samples, Path(image_dir), meta

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = read_rgb(self.image_dir / self.samples[index].path)
        return eval_resize(image, self.meta.height, self.meta.width)


@torch.no_grad()
def embed_batch(
    model: torch.nn.Module, images: torch.Tensor, meta: ModelMeta, device: torch.device, flip: bool
) -> torch.Tensor:
    """float32 CPU (B, D) embeddings of a uint8 (B, H, W, 3) batch already resized to the
    model's input size: normalised on the device, with ``flip`` averaged with the mirror's."""
    images = images.to(device, non_blocking=True)
    images = normalize_images(images, meta.pixel_mean, meta.pixel_std)
    out = model(images)
    if flip:
        out = (out + model(images.flip(3))) / 2
    return out.float().cpu()


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    samples: list[Sample],
    image_dir: Path,
    meta: ModelMeta,
    device: torch.device | str,
    options: FeatureOptions = FeatureOptions(),
    desc: str = "features",
) -> np.ndarray:
    """float32 (N, D) embeddings; with ``options.flip`` the mean of the image's and its
    mirror's."""
    device = resolve_device(device)
    loader = build_loader(
        EvalSet(samples, image_dir, meta), device, options.workers, batch_size=options.batch_size
    )
    feats = [
        embed_batch(model, images, meta, device, options.flip)
        for images in tqdm(loader, desc=desc, leave=False)
    ]
    if not feats:
        return np.zeros((0, meta.embedding_dim or 0), np.float32)
    embeddings = torch.cat(feats).numpy()
    require_finite(embeddings, f"values of the {desc}")
    return embeddings
