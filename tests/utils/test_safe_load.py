"""Weight files anyone may have written: loaded as tensors and arrays only, refused in one line."""

import pickle

import numpy as np
import pytest
import torch

from daaf.errors import DaafError
from daaf.utils.safe_load import REFUSED, check_weights_file, load_weights_only


def test_a_plain_pickle_of_arrays_passes_in_both_protocols(tmp_path):
    """detectron2's model zoo files: a pickle of NumPy arrays under ``model``."""
    zoo = {"model": {"w": np.ones((2, 3), np.float32), "n": np.int64(7)}, "__author__": "zoo"}
    for protocol in (2, 4):
        with open(tmp_path / f"zoo{protocol}.pkl", "wb") as f:
            pickle.dump(zoo, f, protocol=protocol)
        check_weights_file(tmp_path / f"zoo{protocol}.pkl")


def test_a_torch_file_with_numpy_meta_passes(tmp_path):
    """mmengine's checkpoints: tensors, and NumPy values in their meta."""
    state = {"state_dict": {"w": torch.ones(2)}, "meta": {"sigmas": np.ones(17, np.float32)}}
    torch.save(state, tmp_path / "pose.pth")
    check_weights_file(tmp_path / "pose.pth")
    loaded = load_weights_only(tmp_path / "pose.pth", numpy=True)
    assert np.array_equal(loaded["meta"]["sigmas"], np.ones(17, np.float32))
    with pytest.raises(DaafError, match="refused"):  # daaf's own files hold no arrays
        load_weights_only(tmp_path / "pose.pth")


@pytest.mark.parametrize("form", ["pickle", "torch zip", "torch legacy"])
def test_a_file_that_would_run_code_is_refused_in_one_line(tmp_path, payload, form):
    code, marker = payload
    path = tmp_path / "weights.pkl"
    state = {"model": {"w": np.zeros(2)}, "extra": code}
    if form == "pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=form == "torch zip")
    with pytest.raises(DaafError) as info:
        check_weights_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert message == f"{path}: {REFUSED}"
    assert not marker.exists()


def test_torchscript_is_refused_as_weights(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "model.pt")
    with pytest.raises(DaafError) as info:
        load_weights_only(tmp_path / "model.pt")
    assert str(info.value) == f"{tmp_path / 'model.pt'}: {REFUSED} (this is a TorchScript archive)"


def test_files_that_are_no_weights_are_named(tmp_path):
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DaafError, match=r"junk.pkl: not a readable weight file \(Unpickling"):
        check_weights_file(tmp_path / "junk.pkl")
    with pytest.raises(DaafError, match="absent.pth: no such file"):
        check_weights_file(tmp_path / "absent.pth")


def test_files_that_are_no_pt_files_are_named_in_words(tmp_path):
    """A text, an empty and a truncated file: what they are, not torch's KeyError or EOFError."""
    torch.save({"w": torch.ones(1000)}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:1500])
    (tmp_path / "notes.pt").write_text("hello\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    reasons = {
        "notes.pt": "not a torch.save zip archive",
        "empty.pt": "an empty file",
        "cut.pt": "a truncated or damaged torch.save zip archive",
    }
    for name, reason in reasons.items():
        with pytest.raises(DaafError) as info:
            load_weights_only(tmp_path / name)
        assert str(info.value) == f"{tmp_path / name}: not a readable .pt file ({reason})"
