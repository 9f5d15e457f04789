"""The README's "Python API" section: every name it lists imports from the package it names,
it lists each package's whole ``__all__``, and its examples run as written."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "daaf.evaluation",
    "daaf.inference",
    "daaf.data.datasets",
    "daaf.data.annotations",
    "daaf.labeling",
    "daaf.models",
    "daaf.training",
)


def api_section() -> str:
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Python API' section"
    return section.group(1)


def listed_names() -> dict[str, list[str]]:
    """Package -> the names its list items start with (`name(...)`, `other`: what it does)."""
    names: dict[str, list[str]] = {}
    package = None
    for line in api_section().splitlines():
        heading = re.match(r"\*\*`(daaf[\w.]*)`\*\*", line)
        if heading:
            package = heading.group(1)
            names[package] = []
        item = re.match(r"- ((?:`[^`]+`(?:, )?)+): ", line)
        if item and package:
            spans = re.findall(r"`([^`]+)`", item.group(1))
            names[package] += [re.match(r"\w+", span).group() for span in spans]
    return names


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", api_section(), re.S)


def test_the_readme_lists_every_public_name_of_every_package():
    names = listed_names()
    assert sorted(names) == sorted(PACKAGES)
    for package, listed in names.items():
        assert len(listed) == len(set(listed)), f"{package}: a name is listed twice"
        assert sorted(listed) == sorted(importlib.import_module(package).__all__), package


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_imports_from_its_package(package):
    module = importlib.import_module(package)
    for name in listed_names()[package]:
        exec(f"from {package} import {name}", {})
        assert not isinstance(getattr(module, name), type(module)), f"{package}.{name} is a module"
    assert set(module.__all__) <= set(dir(module))
    star: dict = {}
    exec(f"from {package} import *", star)
    assert set(module.__all__) <= set(star)


def test_the_documented_names_of_issue_5_and_the_readme():
    from daaf.evaluation import evaluate_rank, re_ranking, re_ranking_features
    from daaf.evaluation.metrics import evaluate_rank as defined
    from daaf.evaluation.rerank import re_ranking as dense
    from daaf.evaluation.rerank import re_ranking_features as chunked

    assert (evaluate_rank, re_ranking, re_ranking_features) == (defined, dense, chunked)


def test_importing_the_packages_stays_light():
    """No torch, h5py or pandas (so `daaf --help` stays fast), and no import cycle."""
    code = (
        "import sys, daaf.models, daaf.training, daaf.evaluation, daaf.inference, daaf.labeling, daaf.data.annotations, "
        "daaf.data.datasets; print(sorted({'torch', 'h5py', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_names_are_attribute_errors():
    import daaf.evaluation

    with pytest.raises(AttributeError, match="'daaf.evaluation' has no attribute 'evaluate_rnak'"):
        daaf.evaluation.evaluate_rnak  # noqa: B018


def test_the_evaluation_example_runs(capsys):
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(10), 4)
    feats = (rng.normal(size=(10, 8))[ids] + 0.5 * rng.normal(size=(40, 8))).astype(np.float32)
    cams = np.tile(np.arange(4), 10)
    query = np.arange(0, 40, 4)
    gallery = np.setdiff1d(np.arange(40), query)
    scope = {
        "q_feats": feats[query],
        "g_feats": feats[gallery],
        "q_pids": ids[query],
        "g_pids": ids[gallery],
        "q_camids": cams[query],
        "g_camids": cams[gallery],
    }
    (code,) = [e for e in examples() if "evaluate_rank" in e]
    exec(code, scope)
    assert scope["dist"].shape == (10, 30)
    assert 0.5 < scope["result"].mAP <= 1
    assert "'mAP'" in capsys.readouterr().out


def test_the_annotation_example_runs(tiny_dataset):
    (code,) = [e for e in examples() if "AnnotationStore" in e]
    scope: dict = {}
    exec(code.replace('"DATA/', f'"{tiny_dataset.as_posix()}/'), scope)
    store = scope["store"]
    assert len(scope["paths"]) == 4
    assert scope["masks"].shape == (4, *store.mask_size) and scope["masks"].dtype == np.uint8
    assert scope["keypoints"].shape == (4, 17, 3)
    first = store.get(scope["paths"][0])
    np.testing.assert_array_equal(scope["masks"][0], first.mask)
    np.testing.assert_array_equal(scope["keypoints"][0], first.keypoints)


def test_the_inference_example_runs(tiny_dataset, tiny_model, tmp_path, monkeypatch):
    from daaf.inference import Embedder

    query = "Market-1501-v15.09.15/query"
    Embedder(tiny_model).embed_folder(tiny_dataset / query, tmp_path / "gallery.h5", progress=False)
    (code,) = [e for e in examples() if "Embedder" in e]
    first = sorted((tiny_dataset / query).iterdir())[0]
    code = code.replace('"models/daaf_bot"', repr(str(tiny_model)))
    code = code.replace('"query/0001_c1s1_001051_00.jpg"', repr(str(first)))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code, scope)
    assert scope["feats"].shape == (1, 512) and scope["idx"].shape == (1, 5)
    assert scope["gallery"].paths[scope["idx"][0][0]] == first.name  # itself, distance 0
