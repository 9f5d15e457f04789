"""The annotation store (schema v1): per-image person masks and 17 keypoints in HDF5 shards.

Writer: :class:`AnnotationWriter`; reader: :class:`AnnotationStore`; checks:
:func:`validate_store`. The on-disk format is documented in docs/annotations.md.
"""

from daaf.data.annotations.reader import AnnotationStore, keypoint_score_threshold
from daaf.data.annotations.schema import (
    DEFAULT_MASK_SIZE,
    DEFAULT_SHARD_SIZE,
    MANIFEST_COLUMNS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    STATUS_NO_PERSON,
    STATUS_OK,
    STATUS_UNREADABLE,
    ImageAnnotation,
    empty_annotation,
    encode_mask,
    plan_shards,
)
from daaf.data.annotations.validate import validate_store
from daaf.data.annotations.writer import AnnotationWriter

__all__ = [
    "DEFAULT_MASK_SIZE",
    "DEFAULT_SHARD_SIZE",
    "MANIFEST_COLUMNS",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "STATUS_NO_PERSON",
    "STATUS_OK",
    "STATUS_UNREADABLE",
    "AnnotationStore",
    "AnnotationWriter",
    "ImageAnnotation",
    "empty_annotation",
    "encode_mask",
    "keypoint_score_threshold",
    "plan_shards",
    "validate_store",
]
