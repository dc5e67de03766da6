"""Bundles and the Predictor: what serving needs, and nothing from training."""
