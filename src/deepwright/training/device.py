"""The device a run trains on, from `trainer.device`."""

from __future__ import annotations

import torch

from deepwright.errors import ConfigError

__all__ = ["training_device"]


def training_device(choice: str) -> torch.device:
    """The torch device for `choice` ('auto': CUDA when there is one, else the CPU); a `ConfigError` for 'cuda'
    on a machine without it."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(choice)
