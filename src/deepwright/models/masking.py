"""Masks and pooling over padded sequences: a batch (B, T, D) whose rows have `lengths` valid steps, padded at
the end. Every function here ignores the padded steps, so extra padding never changes a result.
"""

from __future__ import annotations

import torch

__all__ = ["masked_max", "masked_mean", "step_mask"]


def step_mask(lengths: torch.Tensor, num_steps: int) -> torch.Tensor:
    """(B, T) bool, True at the valid steps of each row.

    >>> step_mask(torch.tensor([1, 3]), 3).tolist()
    [[True, False, False], [True, True, True]]
    """
    return torch.arange(num_steps, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the valid steps: (B, T, D) with a (B, T) mask (None: every step) → (B, D).

    >>> masked_mean(torch.tensor([[[1.0], [3.0], [99.0]]]), torch.tensor([[True, True, False]])).tolist()
    [[2.0]]
    """
    if mask is None:
        return values.mean(dim=1)
    weights = mask.unsqueeze(-1).to(values.dtype)  # (B, T, 1)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def masked_max(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Maximum over the valid steps: (B, T, D) with a (B, T) mask (None: every step) → (B, D).

    >>> masked_max(torch.tensor([[[1.0], [3.0], [99.0]]]), torch.tensor([[True, True, False]])).tolist()
    [[3.0]]
    """
    if mask is None:
        return values.amax(dim=1)
    return values.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
