"""daaf: Deep Attention Aware Feature Learning for person re-identification."""

__version__ = "0.1.0"
