"""`TransformerEncoder`: pre-norm Transformer encoder blocks over sequences, pooled to one vector per sequence.

Input: `inputs` (B, T, input_size) floats (token ids are embedded by the feature's encoder first) and `lengths`
(B,), the valid steps of each row, padding at the end (None: every row is full). Padded steps are masked out of
every attention (a key padding mask given to `torch.nn.functional.scaled_dot_product_attention`) and out of the
pooling, so padding never changes a result. Output: (B, size).

    x = Linear(input_size → size)(inputs) + positions        (a learned table or fixed sinusoids)
    repeat `layers` times:  x = x + Attention(LayerNorm(x));  x = x + MLP(LayerNorm(x))
    LayerNorm, then the mean of the valid steps, or the state of a learned [CLS] step put in front
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import SequenceTransformerEncoderConfig, TransformerEncoderConfig
from deepwright.models.checkpointing import run_block
from deepwright.models.encoders import EncoderInput
from deepwright.models.masking import masked_mean, step_mask
from deepwright.registry import ENCODERS

__all__ = ["EncoderBlock", "SelfAttention", "TransformerEncoder", "sinusoidal_positions", "transformer_settings"]

POSITIONS = ("sinusoidal", "learned")
POOLINGS = ("mean", "cls")


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed positional encodings of "Attention is all you need": (num_positions, dim), sines on even
    features and cosines on odd ones, wavelengths from 2π to 10000·2π.

    >>> sinusoidal_positions(3, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)  # (P, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (dim/2,)
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class SelfAttention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention` (fused kernels where available)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.dropout = dropout
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        batch, steps, dim = x.shape  # B, T, C
        query, key, value = self.qkv(x).split(dim, dim=2)
        shape = (batch, steps, self.heads, dim // self.heads)
        query = query.view(shape).transpose(1, 2)  # (B, nh, T, hs)
        key = key.view(shape).transpose(1, 2)  # (B, nh, T, hs)
        value = value.view(shape).transpose(1, 2)  # (B, nh, T, hs)
        attention_mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, T): True = attend
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, nh, T, hs)
        attended = attended.transpose(1, 2).reshape(batch, steps, dim)  # (B, T, C)
        return self.output_dropout(self.projection(attended))


class EncoderBlock(nn.Module):
    """One pre-norm block: x + Attention(LayerNorm(x)), then x + MLP(LayerNorm(x))."""

    def __init__(self, dim: int, heads: int, feedforward_size: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, feedforward_size), nn.GELU(), nn.Linear(feedforward_size, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), key_mask)
        return x + self.mlp(self.mlp_norm(x))


class TransformerEncoder(nn.Module):
    """Pre-norm Transformer encoder over (B, T, input_size) sequences of `lengths` valid steps → (B, size).

    >>> encoder = TransformerEncoder(3, size=8, layers=1, heads=2, pooling="cls")
    >>> encoder(torch.zeros(2, 5, 3), torch.tensor([5, 2])).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        input_size: int,
        *,
        size: int = 64,
        layers: int = 2,
        heads: int = 4,
        feedforward: int | None = None,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        pooling: str = "mean",
        max_length: int = 512,
    ) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, not {positions!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        dim = size
        self.input = nn.Linear(input_size, dim) if input_size != dim else nn.Identity()
        self.pooling = pooling
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pooling == "cls" else None
        self.max_length = max_length
        num_positions = max_length + (1 if pooling == "cls" else 0)
        if positions == "learned":
            self.positions = nn.Parameter(torch.randn(num_positions, dim) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(num_positions, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, feedforward or 4 * dim, dropout) for _ in range(layers))
        self.gradient_checkpointing = False  # recompute each block in the backward pass (models/checkpointing)
        self.norm = nn.LayerNorm(dim)
        self.output_size = dim

    @classmethod
    def from_options(cls, options: SequenceTransformerEncoderConfig, shape: EncoderInput) -> TransformerEncoder:
        """The Transformer encoder of `options` over up to `shape.steps` steps of `shape.size` features."""
        return cls(
            shape.size,
            **transformer_settings(options),
            positions=options.positions,
            pooling=options.pooling,
            max_length=shape.steps,
        )

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, input_size) inputs with (B,) valid lengths (None: all T) → (B, size)."""
        states, mask = self.steps(inputs, lengths, keep_cls=True)
        if self.pooling == "cls":
            return states[:, 0]  # (B, dim)
        return masked_mean(states, mask)

    def steps(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, *, keep_cls: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The final state of every step (B, T, size) and the (B, T) mask of valid steps (None: all valid).
        With [CLS] pooling and `keep_cls`, the [CLS] step comes first (T + 1 steps)."""
        batch, num_steps, _ = inputs.shape
        if num_steps > self.max_length:
            raise ValueError(f"sequences of {num_steps} steps are longer than max_length {self.max_length}")
        x = self.input(inputs)  # (B, T, dim)
        mask = None if lengths is None or bool((lengths == num_steps).all()) else step_mask(lengths, num_steps)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(batch, 1, -1), x], dim=1)  # (B, T + 1, dim)
            if mask is not None:
                mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)
        x = self.dropout(x + self.positions[: x.shape[1]])
        for block in self.blocks:
            x = run_block(self, block, x, mask)
        x = self.norm(x)
        if self.cls is not None and not keep_cls:
            return x[:, 1:], None if mask is None else mask[:, 1:]
        return x, mask


def transformer_settings(options: TransformerEncoderConfig) -> dict[str, Any]:
    """The `TransformerEncoder` arguments every transformer encoder config gives: width, layers, heads,
    feed-forward width and dropout."""
    return {
        "size": options.dim,
        "layers": options.layers,
        "heads": options.heads,
        "feedforward": options.feedforward_dim,
        "dropout": options.dropout,
    }


ENCODERS.register("steps/transformer")(TransformerEncoder.from_options)
