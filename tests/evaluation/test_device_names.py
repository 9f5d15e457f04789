"""Every public function that takes a device also takes its name ("cpu"); a name that is no
device is one line (DaafError), from the library and from every command's --device."""

from pathlib import Path

import numpy as np
import pytest
import torch

from daaf.config import Config
from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.evaluation import (
    EvalOptions,
    FeatureOptions,
    background_sensitivity,
    evaluate_embeddings,
    evaluate_model,
    extract_features,
    measure_latency,
    query_gallery_features,
    write_evaluation,
)
from daaf.models import ModelMeta, load_inference_model
from daaf.utils.device import resolve_device

META = ModelMeta(16, 8, [0.5] * 3, [0.25] * 3)


class MeanColour(torch.nn.Module):
    """A stand-in embedding: the mean colour of each third of the image, (B, 9)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images, (3, 1)).flatten(1)


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return build_dataset("market1501", tiny_dataset)


def test_a_device_name_is_accepted_wherever_a_device_is_taken(dataset, tmp_path):
    model = MeanColour()
    query, gallery = query_gallery_features(model, dataset, META, "cpu", FeatureOptions(workers=0))
    assert query.shape == (16, 9) and gallery.shape == (32, 9)
    feats = extract_features(
        model, dataset.query, dataset.image_dir, META, "cpu", FeatureOptions(workers=0)
    )
    np.testing.assert_array_equal(feats, query)
    cfg = Config().data
    cfg.height, cfg.width, cfg.pixel_mean, cfg.pixel_std, cfg.workers = (
        16,
        8,
        [0.5] * 3,
        [0.25] * 3,
        0,
    )
    assert 0 <= evaluate_embeddings(model, dataset, cfg, "cpu", "euclidean").mAP <= 1
    evaluation = evaluate_model(
        model, META, dataset, "cpu", EvalOptions(features=FeatureOptions(workers=0))
    )
    write_evaluation(evaluation, tmp_path / "eval", num_ranklists=0)
    table = evaluation.metrics_table()
    assert 0 <= table["mAP"].iloc[0] <= 100
    store = AnnotationStore(dataset.image_dir.parent / "annotations")
    assert background_sensitivity(model, dataset, store, META, dataset.query[:4], "cpu").ratio >= 0
    assert measure_latency(model, (1, 3, 16, 8), "cpu", repeats=1, warmup=0) > 0


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "gpu0"])
def test_a_bogus_device_name_is_one_line(dataset, tmp_path, name):
    message = rf"^device '{name}' is not a device: use auto, cpu, cuda or cuda:N$"
    with pytest.raises(DaafError, match=message):
        query_gallery_features(MeanColour(), dataset, META, name, FeatureOptions(workers=0))
    with pytest.raises(DaafError, match=message):
        evaluate_model(MeanColour(), META, dataset, name)
    assert not (tmp_path / "eval").exists()  # refused before the folder is made
    with pytest.raises(DaafError, match=message):
        load_inference_model(Path(tmp_path), name)


def test_resolve_device_takes_devices_and_names():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
