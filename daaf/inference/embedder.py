"""Embeddings of any images with an exported model or a checkpoint, as ``daaf evaluate`` computes
them (same loading, resize, normalisation and flip averaging)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from daaf import __version__
from daaf.data.images import image_problem, read_rgb
from daaf.data.loader import build_loader
from daaf.data.transforms import eval_resize
from daaf.errors import DaafError
from daaf.evaluation.features import embed_batch
from daaf.evaluation.metrics import require_finite
from daaf.inference.inputs import common_root, list_images
from daaf.inference.store import EmbeddingWriter, file_sha256, inputs_sha256
from daaf.models.meta import ModelMeta

# What the stored features are: raw embeddings, as `daaf evaluate` ranks them (search normalises
# them itself for the cosine metric).
NORMALIZATION = "none"


class ImageFiles(Dataset):
    """``(uint8 (H, W, 3) resized image, problem)`` per path; an image that does not decode
    completely gives a black image and the reason, so that one bad file does not stop a run."""

    def __init__(self, paths: Sequence[Path], meta: ModelMeta) -> None:
        self.paths, self.size = paths, (meta.height, meta.width)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        path = self.paths[index]
        problem = image_problem(path)  # PIL decodes fully: finds truncated files cv2 would pass
        if problem is None:
            try:
                return eval_resize(read_rgb(path), *self.size), ""
            except DaafError:
                problem = "not a readable image"
        return torch.zeros((*self.size, 3), dtype=torch.uint8), problem


def model_file(model_path: Path) -> Path:
    """The file :func:`load_inference_model` read for a model path (without trusting
    TorchScript, a folder is always read from its model_state.pt)."""
    model_path = Path(model_path)
    return model_path / "model_state.pt" if model_path.is_dir() else model_path


@dataclass
class EmbedReport:
    """What :meth:`Embedder.embed_folder` did: the file, its rows, and the images it could not read."""

    path: Path
    rows: int
    unreadable: list[tuple[str, str]]
    resumed_from: int


class Embedder:
    """An eval-mode model and its input description: ``embed`` images, ``embed_folder`` to a file.

    ``model_path`` is what ``daaf evaluate --model`` takes (export folder, model_state.pt or a
    training checkpoint), loaded the same safe way. ``flip`` (default: the model meta's, off for
    daaf exports) averages each embedding with its mirror image's, as ``daaf evaluate --flip``.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        workers: int = 0,
        flip: bool | None = None,
    ) -> None:
        from daaf.models import load_inference_model
        from daaf.utils.device import resolve_device

        self.device = resolve_device(str(device))
        self.model_path = Path(model_path)
        self.model, self.meta = load_inference_model(self.model_path, self.device)
        self.model.eval()
        self.flip = bool(self.meta.flip if flip is None else flip)
        self.batch_size, self.workers = batch_size, workers
        self.sha256 = file_sha256(model_file(self.model_path))

    @property
    def dim(self) -> int:
        return int(self.meta.embedding_dim)

    def attrs(self) -> dict:
        """The model's part of an embedding file's attributes."""
        return {
            "model": str(self.model_path),
            "model_sha256": self.sha256,
            "embedding_dim": self.dim,
            "normalization": NORMALIZATION,
            "metric": self.meta.metric,
            "flip": self.flip,
            "image_size": [int(self.meta.height), int(self.meta.width)],
            "pixel_mean": list(self.meta.pixel_mean),
            "pixel_std": list(self.meta.pixel_std),
            "daaf_version": __version__,
        }

    def _batches(
        self, paths: Sequence[Path], progress: bool, done: int = 0
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        """``(features of the batch's readable images, problem per image or "")`` per batch."""
        loader = build_loader(
            ImageFiles(paths, self.meta), self.device, self.workers, batch_size=self.batch_size
        )
        with tqdm(
            total=len(paths) + done,
            initial=done,
            unit="img",
            desc="embed",
            disable=not progress,
            leave=False,
        ) as bar:
            for images, problems in loader:
                ok = torch.tensor([not p for p in problems], dtype=torch.bool)
                feats = (
                    self._embed_batch(images[ok])
                    if ok.any()
                    else np.zeros((0, self.dim), np.float32)
                )
                bar.update(len(problems))
                yield feats, list(problems)

    def _embed_batch(self, images: torch.Tensor) -> np.ndarray:
        """float32 (B, D) embeddings of a resized uint8 batch; DaafError if any value is NaN or
        infinite (a broken model), so that no file or search holds embeddings that rank garbage."""
        feats = embed_batch(self.model, images, self.meta, self.device, self.flip).numpy()
        require_finite(feats, "values of a batch of embeddings", "none of them was kept")
        return feats

    def embed(self, images: Sequence[str | Path | np.ndarray]) -> np.ndarray:
        """float32 (N, D) embeddings of image files or uint8 (H, W, 3) RGB arrays (any size:
        resized to the model's input as evaluation does); an unreadable file is a DaafError."""
        arrays = [i for i in images if isinstance(i, np.ndarray)]
        if arrays and len(arrays) != len(images):
            raise DaafError("embed() takes either image paths or arrays, not both in one call")
        if not arrays:
            feats, problems = [], []
            for batch, batch_problems in self._batches([Path(p) for p in images], progress=False):
                feats.append(batch)
                problems += batch_problems
            bad = [f"{p} ({why})" for p, why in zip(images, problems, strict=True) if why]
            if bad:
                raise DaafError(f"cannot read {len(bad)} image(s): {'; '.join(bad[:3])}")
            return np.concatenate(feats) if feats else np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(arrays), self.batch_size):
            batch = []
            for array in arrays[start : start + self.batch_size]:
                if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                    raise DaafError(
                        f"embed() takes uint8 (H, W, 3) RGB arrays, got {array.dtype} {array.shape}"
                    )
                batch.append(eval_resize(array, self.meta.height, self.meta.width))
            out.append(self._embed_batch(torch.stack(batch)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_folder(
        self,
        images: str | Path | Sequence[str | Path],
        out: str | Path,
        resume: bool = False,
        progress: bool = True,
    ) -> EmbedReport:
        """Embed folders, image files and text lists (see :func:`list_images`) into the HDF5
        file ``out``, one chunk per batch; ``resume`` continues an interrupted file after its
        last complete chunk. Unreadable images are recorded and skipped; memory holds one batch."""
        inputs = [images] if isinstance(images, str | Path) else list(images)
        paths = list_images(inputs)
        root, relative = common_root(paths)
        attrs = {
            **self.attrs(),
            "root": root,
            "num_inputs": len(paths),
            "inputs_sha256": inputs_sha256(relative),
        }
        writer = EmbeddingWriter(Path(out), attrs, resume=resume)
        start, refused = writer.done, False
        position = start
        try:
            for feats, problems in self._batches(paths[start:], progress, done=start):
                names = relative[position : position + len(problems)]
                writer.append(
                    feats,
                    [n for n, p in zip(names, problems, strict=True) if not p],
                    [(n, p) for n, p in zip(names, problems, strict=True) if p],
                    len(problems),
                )
                position += len(problems)
        except DaafError:
            refused = True  # the same inputs would be refused again: nothing to resume
            raise
        finally:
            rows, unreadable = writer.rows, writer.unreadable()
            writer.close(complete=position == len(paths) and not refused)
            if rows == 0 or refused:  # of no use to search or --resume: in no one's way
                writer.discard()
        return EmbedReport(Path(out), rows, unreadable, start)
