"""Combiners: from the list of encoded input vectors to the one vector every output head reads."""

from __future__ import annotations

import torch
from torch import nn

from deepwright.config import ConcatCombinerConfig
from deepwright.models.blocks import MLP
from deepwright.registry import COMBINERS

__all__ = ["ConcatCombiner"]


@COMBINERS.register("concat")
class ConcatCombiner(nn.Module):
    """Concatenate the encoded inputs along the feature axis, then an MLP.

    >>> combiner = ConcatCombiner(ConcatCombinerConfig(dims=[16]), [3, 5])
    >>> combiner([torch.zeros(2, 3), torch.zeros(2, 5)]).shape
    torch.Size([2, 16])
    """

    def __init__(self, options: ConcatCombinerConfig, input_sizes: list[int]) -> None:
        super().__init__()
        self.mlp = MLP(
            sum(input_sizes),
            options.dims,
            activation=options.activation,
            dropout=options.dropout,
            norm=options.norm,
        )
        self.output_size = self.mlp.output_size

    def forward(self, encoded: list[torch.Tensor]) -> torch.Tensor:
        hidden = encoded[0] if len(encoded) == 1 else torch.cat(encoded, dim=1)  # (B, sum of input sizes)
        return self.mlp(hidden)
