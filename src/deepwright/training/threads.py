"""How many CPU threads torch uses for a run."""

from __future__ import annotations

from typing import Any

__all__ = ["SMALL_STEP", "training_threads"]

SMALL_STEP = 1_000_000
"""Parameters × batch size below which a training step is too small to share among threads."""


def training_threads(model: Any, batch_size: int, requested: int | None) -> int:
    """The thread count for training `model`: the config's `threads` when given; one thread when a step is small
    (its matrices are too small for intra-op parallelism to pay, and spinning worker threads slow a shared machine
    many-fold); otherwise torch's own choice (one per core)."""
    import torch

    if requested:
        return requested
    parameters = sum(parameter.numel() for parameter in model.parameters())
    if parameters * batch_size < SMALL_STEP:
        return 1
    return torch.get_num_threads()
