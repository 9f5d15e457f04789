"""Shared fixtures. ``tiny_dataset``: a Market-1501-layout dataset with an exact annotation store;
``tiny_model``, ``other_model``: two ResNet-18 BoT exports (64x32), as `daaf export` writes them.

Each identity is a person-shaped block of its own two colours on a noisy background, so a
network can learn identities in a few steps; masks and keypoints are the drawn block's.
``trained_export``: one tiny DAAF-BoT trained on it and exported, shared by the train, export,
evaluate and visualize tests. ``dataset_maker``: the maker of ``tiny_dataset``, for a test that
needs a dataset of its own (other names, pictures or layout); ``cli``: runs a daaf command.
"""

import hashlib
import importlib.util
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from daaf.cli import main
from daaf.data.annotations import AnnotationWriter, ImageAnnotation, encode_mask
from daaf.data.datasets import build_dataset

H, W = 64, 32
REPO = Path(__file__).resolve().parents[1]
# Training settings for the tiny dataset: 64x32 images, ResNet-18 from scratch, 4x2 batches,
# branch decoders 8 channels wide (64 make a DAAF step on the CPU several times a BoT step).
TINY = [
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.depth=18",
    "model.pretrained=none",
    "model.decoder_channels=8",
    "train.log_period=1",
    "data.dataset=market1501",
    "data.pre_crop_size=null",
]


def load_script(path: Path) -> ModuleType:
    """A repository script (scripts/, benchmarks/, a fixture maker) imported from its path, as
    Python's importlib recipe does it: registered in sys.modules, where its dataclasses look."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


# The longest test files (each over 15 s of CPU), started first: pytest-xdist hands out tests
# in collection order, and a long test handed out last keeps one worker busy alone.
LONGEST_FIRST = ("test_demo.py", "test_gpu_check.py", "test_branch_learning.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: else as collected


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker takes its share of the cores for torch's threads, so
    that N workers do not run N x cores threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def tiny_overrides(root: Path, *extra: str) -> list[str]:
    """Config overrides training on the dataset at ``root`` with the TINY settings."""
    return [f"data.root={root}", f"data.annotations={root / 'annotations'}", *TINY, *extra]


def draw(rng, colors):
    """A person-shaped block in an identity's two colours on noise: (image, mask, keypoints)."""
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    top, left = int(rng.integers(2, 8)), int(rng.integers(4, 10))
    bottom, right = top + 50, left + 14
    image[top : top + 25, left:right] = colors[0]
    image[top + 25 : bottom, left:right] = colors[1]
    mask = np.zeros((H, W), np.float32)
    mask[top:bottom, left:right] = 1
    ys = np.linspace(top + 2, bottom - 2, 17)
    keypoints = np.stack([np.full(17, (left + right) / 2), ys, np.ones(17)], axis=1)
    return image, mask, keypoints.astype(np.float32)


def market_names(num_ids: int, per_id: int) -> list[str]:
    """Market-1501 file names: ``num_ids`` training identities, as many test ones (2 queries
    each, the rest gallery), ``per_id`` images each over cameras 1-3."""
    names = []
    for pid in range(1, 2 * num_ids + 1):
        for i in range(per_id):
            if pid <= num_ids:
                folder = "bounding_box_train"
            else:
                folder = "query" if i < 2 else "bounding_box_test"
            names.append(f"{folder}/{pid:04d}_c{i % 3 + 1}s1_{i:06d}_00.jpg")
    return names


def make_dataset(
    root: Path,
    num_ids: int = 8,
    per_id: int = 6,
    seed: int = 0,
    *,
    folder: str = "Market-1501-v15.09.15",
    names: list[str] | None = None,
    picture=draw,
    corrupt: tuple[str, ...] = (),
    annotations: bool = True,
) -> Path:
    """A Market-1501 dataset under ``root`` and, with ``annotations``, its exact store in
    ``root/annotations``; returns ``root``.

    ``names``: the image files in ``root/folder`` (default ``market_names(num_ids, per_id)``;
    another dataset's layout is its names and ``folder``); ``picture(rng, colors)`` draws one as
    (image, mask, keypoints), ``colors`` its identity's (the name's first field); files named in
    ``corrupt`` hold garbage bytes instead.
    """
    rng = np.random.default_rng(seed)
    base = root / folder
    palette, drawn = {}, {}
    for name in market_names(num_ids, per_id) if names is None else names:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        if Path(name).name in corrupt:
            (base / name).write_bytes(b"this is not a jpeg" * 10)
            continue
        pid = Path(name).name.split("_")[0]
        if pid not in palette:
            palette[pid] = rng.integers(0, 256, (2, 3))
        image, mask, keypoints = picture(rng, palette[pid])
        cv2.imwrite(str(base / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        drawn[name] = (mask, keypoints)
    if annotations:
        write_annotations(root, drawn)
    return root


def write_annotations(root: Path, drawn: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The store of the Market-1501 dataset at ``root``: each image's drawn mask and keypoints."""
    dataset = build_dataset("market1501", root)
    writer = AnnotationWriter(root / "annotations", "market1501", {"backend": "test"})
    for split in ("train", "query", "gallery"):
        records = []
        for sample in dataset.split(split):
            mask, keypoints = drawn[sample.path]
            height, width = mask.shape
            image = (dataset.image_dir / sample.path).read_bytes()
            record = ImageAnnotation(
                image_path=sample.path,
                split=split,
                pid=sample.pid,
                camid=sample.camid,
                image_size=(height, width),
                mask=encode_mask(mask),
                keypoints=keypoints,
                person_box=np.array([0, 0, width, height], np.float32),
                person_score=1.0,
                status=0,
                image_sha256=hashlib.sha256(image).digest(),
            )
            records.append(record)
        writer.write_shard(split, 0, records)
    writer.write_manifest()


@pytest.fixture(scope="session")
def dataset_maker():
    """``make_dataset``, for a test or conftest that needs a dataset of its own."""
    return make_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def cli() -> Callable[..., Result]:
    """``cli(*args, ok=True, **kwargs)``: ``daaf ARGS`` run in-process by click's CliRunner
    (``kwargs`` go to its ``invoke``), returning click's Result; with ``ok``, an exit code other
    than 0 fails the test and shows the command's output."""

    def run(*args, ok: bool = True, **kwargs) -> Result:
        result = CliRunner().invoke(main, [str(arg) for arg in args], **kwargs)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


@pytest.fixture(scope="session")
def trained_export(tiny_dataset, tmp_path_factory, cli) -> SimpleNamespace:
    """A DAAF-BoT (HAB and PAB, 8 decoder channels) trained for two steps, evaluated once, by
    ``daaf train``, and exported by ``daaf export``: one model for every test that needs a
    trained or exported one (each test used to make its own, an export costs seconds).

    ``run``: the run folder; ``checkpoint``: its last.pt; ``model``: the export folder;
    ``train``, ``export``: the two commands' CliRunner results. Tests only read these files.
    """
    tmp = tmp_path_factory.mktemp("trained")
    run, model = tmp / "daaf_bot", tmp / "model"
    checkpoint = run / "checkpoints" / "last.pt"
    overrides = tiny_overrides(
        tiny_dataset, "train.epochs=1", "train.iters_per_epoch=2", "train.eval_period=1"
    )
    args = ["train", "--config", str(REPO / "configs" / "daaf_bot.yaml"), "--out", str(run)]
    train = cli(*args, *overrides)
    export = cli("export", checkpoint, "--out", model)
    return SimpleNamespace(run=run, checkpoint=checkpoint, model=model, train=train, export=export)


class _Payload:
    """Unpickling it runs ``touch MARKER``, as a malicious checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture
def payload(tmp_path):
    """(payload, marker): unpickling ``payload`` creates ``marker``."""
    marker = tmp_path / "payload_ran"
    return _Payload(marker), marker


@pytest.fixture
def malicious_pt(payload):
    """(write, marker): ``write(PATH)`` saves a checkpoint-shaped file whose ``model`` entry
    creates ``marker`` when unpickled with ``weights_only=False``."""
    code, marker = payload

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": code, "config": {}, "num_classes": 2, "epoch": 99}
        torch.save(state, path)
        return path

    return write, marker


def write_model(folder: Path, seed: int = 0) -> Path:
    """An export folder holding model_state.pt of a random ResNet-18 BoT network (64x32)."""
    from daaf.config import Config
    from daaf.models import ModelMeta, build_model, inference_network

    cfg = Config()
    cfg.data.height, cfg.data.width = H, W
    cfg.model.depth, cfg.model.pretrained, cfg.model.hab, cfg.model.pab = 18, "none", False, False
    torch.manual_seed(seed)
    base = inference_network(build_model(cfg, 8))
    meta = ModelMeta.from_config(cfg.data, cfg.model, embedding_dim=512).to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "state_dict": base.state_dict(),
        "config": cfg.to_dict(),
        "num_classes": 8,
        "meta": meta,
    }
    torch.save(state, folder / "model_state.pt")
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("models") / "tiny model")


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("models") / "other", seed=1)


class _Overwrites(torch.nn.Module):
    """A scripted forward that overwrites the first bytes of ``target`` (``torch.from_file``
    maps it shared): what a crafted model.ts can do to a login script."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mapped = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
        mapped.fill_(88)
        return images.flatten(1)[:, :8] + mapped[0].float() * 0


@pytest.fixture
def crafted_ts(tmp_path):
    """(write, victim): ``write(FOLDER)`` puts a crafted model.ts with daaf's meta (64 x 32
    inputs) in FOLDER; running it turns ``victim``'s "precious contents" into "XXXXious ..."."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious contents")
    meta = {
        "height": H,
        "width": W,
        "pixel_mean": [0, 0, 0],
        "pixel_std": [1, 1, 1],
        "metric": "cosine",
        "embedding_dim": 8,
    }

    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        torch.jit.save(
            torch.jit.script(_Overwrites(str(victim))),
            str(folder / "model.ts"),
            _extra_files={"daaf_meta.json": json.dumps(meta)},
        )
        return folder / "model.ts"

    return write, victim
