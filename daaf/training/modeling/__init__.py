"""The DAAF network: ResNet backbone, BoT / TriNet head, holistic and partial attention branches."""

from daaf.training.modeling.daaf import DAAF, BaseNetwork, DAAFOutput, build_model

__all__ = ["DAAF", "BaseNetwork", "DAAFOutput", "build_model"]
