"""Ranking metrics, k-reciprocal re-ranking, feature extraction, protocols and pictures."""
