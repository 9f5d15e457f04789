"""COCO-pretrained person masks and 17 keypoints for every image of a ReID dataset.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "backends": ["build_labeler"],
        "base": ["LABELERS", "LabelResult", "Labeler", "register_labeler"],
        "driver": ["LabelOptions", "run_labeler"],
    },
)
