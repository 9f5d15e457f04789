"""Datasets, synthetic pedestrians, the annotation store and training-time data pipeline."""
