"""Sequence encoders: a padded batch of sequences → one vector per sequence, through a recurrent network, a
Transformer encoder or a 1-D convolution stack, chosen by the encoder config's `type` (rnn, transformer, conv1d).

Every sequence block reads `steps` (`deepwright.models.encoders`): it takes `(inputs (B, T, D) floats,
lengths (B,))` and returns (B, output_size). The feature encoders here turn what a feature's preprocessing
produces into that pair:

- `TokenSequenceEncoder`: token ids (B, T), 0 for padding at the end → embedding → block (the `tokens` builders
  of rnn, transformer and conv1d);
- `ValueSequenceEncoder`: numeric series (B, T, C), NaN at the padded steps at the end → block.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepwright.config import Conv1DEncoderConfig
from deepwright.models.conv import ConvStack
from deepwright.models.encoders import EncoderInput, build_encoder
from deepwright.registry import ENCODERS

__all__ = ["ConvSequence", "TokenSequenceEncoder", "ValueSequenceEncoder"]


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

    @classmethod
    def from_options(cls, options: Conv1DEncoderConfig, shape: EncoderInput) -> ConvSequence:
        """The 1-D stack of `options` over steps of `shape.size` features."""
        return cls(ConvStack.from_options(options, EncoderInput("grid", shape.size, dims=1)))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            valid = torch.arange(inputs.shape[1], device=inputs.device)[None, :] < lengths[:, None]  # (B, T)
            inputs = inputs * valid.unsqueeze(-1)
        return self.stack(inputs.transpose(1, 2))  # (B, D, T) → (B, channels[-1])


class TokenSequenceEncoder(nn.Module):
    """Token ids (B, T), 0 for padding at the end → embeddings (B, T, E) → a sequence block → (B, output_size).

    >>> from deepwright.models.recurrent import Recurrent
    >>> encoder = TokenSequenceEncoder(10, 4, Recurrent(4, hidden_size=6))
    >>> encoder(torch.tensor([[3, 4, 0], [5, 0, 0]])).shape
    torch.Size([2, 6])
    """

    def __init__(self, num_embeddings: int, embedding_size: int, block: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_size, padding_idx=0)
        self.block = block
        self.output_size = block.output_size

    @classmethod
    def from_options(cls, options: Any, shape: EncoderInput) -> TokenSequenceEncoder:
        """Token ids of a vocabulary of `shape.size`, embedded into `shape.embedding_dim` values, read by the
        sequence block of `options` (rnn, transformer or conv1d)."""
        block = build_encoder(options, EncoderInput("steps", shape.embedding_dim, shape.steps))
        return cls(shape.size, shape.embedding_dim, block)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != 0).sum(dim=1)  # (B,): padding sits at the end
        return self.block(self.embedding(ids), lengths)


class ValueSequenceEncoder(nn.Module):
    """Numeric series (B, T, C), NaN at padded steps at the end → a sequence block → (B, output_size).

    >>> from deepwright.models.recurrent import Recurrent
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


ENCODERS.register("steps/conv1d")(ConvSequence.from_options)
for _type in ("rnn", "transformer", "conv1d"):
    ENCODERS.register(f"tokens/{_type}")(TokenSequenceEncoder.from_options)
