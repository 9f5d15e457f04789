"""The paper's pictures: Grad-CAM attention maps (eq. 5-8), branch outputs at inference and the
PAB's 1x1 conv shuffle, as numpy arrays and PNG figures."""

from daaf.evaluation.visualize.branches import branch_outputs, labels_in_input_frame
from daaf.evaluation.visualize.figures import (
    denormalize,
    overlay,
    save_attention_figure,
    save_branch_figure,
    save_partial_attention_figure,
    save_shuffle_figure,
)
from daaf.evaluation.visualize.gradcam import (
    DEFAULT_COMPONENTS,
    DEFAULT_JITTER,
    describe_components,
    describe_jitter,
    grad_cam,
    holistic_attention,
    partial_attention,
    select_components,
    shift_averaged,
)
from daaf.evaluation.visualize.shuffle import decoupling_score, shuffle_grid, supports_shuffle

__all__ = [
    "DEFAULT_COMPONENTS",
    "DEFAULT_JITTER",
    "branch_outputs",
    "decoupling_score",
    "denormalize",
    "describe_components",
    "describe_jitter",
    "grad_cam",
    "holistic_attention",
    "labels_in_input_frame",
    "overlay",
    "partial_attention",
    "save_attention_figure",
    "save_branch_figure",
    "save_partial_attention_figure",
    "save_shuffle_figure",
    "select_components",
    "shift_averaged",
    "shuffle_grid",
    "supports_shuffle",
]
