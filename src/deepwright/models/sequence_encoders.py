"""Sequence encoders: a padded batch of sequences → one vector per sequence, through a recurrent network, a
Transformer encoder or a 1-D convolution stack, chosen by the encoder config's `type` (rnn, transformer, conv1d).

Every sequence block takes `(inputs (B, T, D) floats, lengths (B,))` and returns (B, output_size). The feature
encoders here turn what a feature's preprocessing produces into that pair:

- `TokenSequenceEncoder`: token ids (B, T), 0 for padding at the end → embedding → block;
- `ValueSequenceEncoder`: numeric series (B, T, C), NaN at the padded steps at the end → block.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepwright.models.conv import conv_backbone
from deepwright.models.recurrent import Recurrent
from deepwright.models.transformer import TransformerEncoder

__all__ = [
    "ConvSequence",
    "TokenSequenceEncoder",
    "ValueSequenceEncoder",
    "build_sequence_block",
    "sequence_output_size",
]


class ConvSequence(nn.Module):
    """A 1-D `ConvStack` (its input channels: the step features) over (B, T, D) sequences: padded steps are
    zeroed (what the convolution's own border padding holds), then the stack and its global average pooling.

    >>> from deepwright.models.conv import ConvStack
    >>> ConvSequence(ConvStack(3, channels=[8], dims=1))(torch.zeros(2, 5, 3), torch.tensor([5, 2])).shape
    torch.Size([2, 8])
    """

    def __init__(self, stack: nn.Module) -> None:
        super().__init__()
        self.stack = stack
        self.output_size = stack.output_size

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            valid = torch.arange(inputs.shape[1], device=inputs.device)[None, :] < lengths[:, None]  # (B, T)
            inputs = inputs * valid.unsqueeze(-1)
        return self.stack(inputs.transpose(1, 2))  # (B, D, T) → (B, channels[-1])


def build_sequence_block(options: Any, input_size: int, max_length: int) -> nn.Module:
    """The sequence block an encoder config describes (`type` rnn, transformer or conv1d), reading `input_size`
    features per step, for sequences of at most `max_length` steps."""
    if options.type == "rnn":
        return Recurrent(
            input_size,
            cell=options.cell,
            hidden_size=options.dim,
            layers=options.layers,
            bidirectional=options.bidirectional,
            dropout=options.dropout,
            activation=options.activation,
            reduction=options.reduction,
            output_size=options.output_dim,
        )
    if options.type == "transformer":
        return TransformerEncoder(
            input_size,
            size=options.dim,
            layers=options.layers,
            heads=options.heads,
            feedforward=options.feedforward_dim,
            dropout=options.dropout,
            positions=options.positions,
            pooling=options.pooling,
            max_length=max_length,
        )
    if options.type == "conv1d":
        return ConvSequence(conv_backbone(input_size, options, dims=1))
    raise ValueError(f"no sequence block of type {options.type!r}")


def sequence_output_size(options: Any) -> int:
    """The width of the vector the block of `options` returns (without building it).

    >>> from deepwright.config import SequenceRnnEncoderConfig
    >>> sequence_output_size(SequenceRnnEncoderConfig(dim=8, bidirectional=True))
    16
    """
    if options.type == "rnn":
        return options.output_dim or options.dim * (2 if options.bidirectional else 1)
    if options.type == "transformer":
        return options.dim
    return options.dims[-1]


class TokenSequenceEncoder(nn.Module):
    """Token ids (B, T), 0 for padding at the end → embeddings (B, T, E) → a sequence block → (B, output_size).

    >>> encoder = TokenSequenceEncoder(10, 4, Recurrent(4, hidden_size=6))
    >>> encoder(torch.tensor([[3, 4, 0], [5, 0, 0]])).shape
    torch.Size([2, 6])
    """

    def __init__(self, num_embeddings: int, embedding_size: int, block: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_size, padding_idx=0)
        self.block = block
        self.output_size = block.output_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != 0).sum(dim=1)  # (B,): padding sits at the end
        return self.block(self.embedding(ids), lengths)


class ValueSequenceEncoder(nn.Module):
    """Numeric series (B, T, C), NaN at padded steps at the end → a sequence block → (B, output_size).

    >>> encoder = ValueSequenceEncoder(Recurrent(2, hidden_size=6))
    >>> encoder(torch.tensor([[[1.0, 2.0], [float("nan"), float("nan")]]])).shape
    torch.Size([1, 6])
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.output_size = block.output_size

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        padded = torch.isnan(values[..., 0])  # (B, T)
        lengths = values.shape[1] - padded.sum(dim=1)  # (B,)
        return self.block(torch.nan_to_num(values, nan=0.0), lengths)
