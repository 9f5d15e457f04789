"""The annotation store (schema v2): per-image person masks, 17 keypoints and the SHA-256 of the
image they were made from, in HDF5 shards.

Writer: :class:`AnnotationWriter`; reader: :class:`AnnotationStore`; checks:
:func:`validate_store`. The on-disk format is documented in docs/annotations.md. The public
names below load their module on first use (see :mod:`daaf.utils.lazy`), so that h5py and
pandas are imported only when a store is used.
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "reader": ["AnnotationStore", "keypoint_score_threshold"],
        "report": ["summarize_store"],
        "schema": [
            "DEFAULT_MASK_SIZE",
            "DEFAULT_SHARD_SIZE",
            "MANIFEST_COLUMNS",
            "SCHEMA_NAME",
            "SCHEMA_VERSION",
            "STATUS_LABELER_ERROR",
            "STATUS_NO_PERSON",
            "STATUS_OK",
            "STATUS_UNREADABLE",
            "ImageAnnotation",
            "empty_annotation",
            "encode_mask",
            "plan_shards",
        ],
        "validate": ["validate_store"],
        "writer": ["AnnotationWriter"],
    },
)
