"""The PAB's positive control (scripts/pab_control.py): on `daaf synth --preset misaligned`
data, the keypoint branch trained alone for 144 iterations on one thread localises keypoints
when trained as pose codebases train a heatmap head, and does not with study v2's settings (so
the test can fail); `daaf train`'s branch-health warning agrees both ways."""

import logging

import pytest

from ..conftest import REPO, load_script

HEALTH_LOGGER = "daaf.training.branch_health"


@pytest.fixture(scope="module")
def control():
    return load_script(REPO / "scripts" / "pab_control.py")


@pytest.fixture(scope="module")
def misaligned(control, tmp_path_factory):
    return control.make_data(tmp_path_factory.mktemp("misaligned") / "data")


@pytest.mark.slow
@pytest.mark.parametrize("settings", ["fix", "v2"])
def test_the_pab_localises_as_pose_codebases_train_it_and_not_as_study_v2_did(
    control, misaligned, tmp_path, caplog, settings
):
    with caplog.at_level(logging.WARNING, logger=HEALTH_LOGGER):
        result = control.run_control(misaligned, tmp_path / settings, settings)
    constant = result["constant_map_pck"]
    assert 0.2 < constant < 0.3  # the testbed: a constant map scores about 0.25
    warnings = [r.getMessage() for r in caplog.records if r.name == HEALTH_LOGGER]
    if settings == "fix":
        assert result["pck"] >= constant + 0.15 and result["passes"]
        assert warnings == []
    else:
        assert result["pck"] < constant + 0.15 and not result["passes"]
        assert len(warnings) == 1 and "the PAB (keypoint branch) is not learning" in warnings[0]
