"""The DAAF network (ResNet backbone, BoT / TriNet head, holistic and partial attention
branches), its description (``ModelConfig``, ``ModelMeta``) and the loading of a trained or
exported model.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ["ModelConfig"],
        "daaf": ["DAAF", "DAAFOutput", "build_model", "inference_network"],
        "load": ["load_inference_model"],
        "meta": ["ModelMeta"],
    },
)
