"""A one-file GPT decoder, as in GPT-2 and nanoGPT, with a key/value cache for generation.

Token and position embeddings → `layers` pre-norm blocks (causal self-attention through
`scaled_dot_product_attention`, then a GELU MLP, each added back to its input) → layer norm → logits over the
vocabulary, the output layer sharing the token embedding's weights. Weights start as in GPT-2: normal(0, 0.02),
residual projections scaled by 1/√(2·layers).

Shapes: B batch, T positions, C width (`dim`), nh heads, hs head size (C / nh), V vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from deepwright.config import GPTConfig
from deepwright.models.checkpointing import run_block

__all__ = ["GPT", "KVCache"]


class KVCache:
    """The keys and values of every position seen so far, for each layer, kept so that a new token attends to them
    without recomputing them: each generated token then costs one position, not the whole context.

    >>> cache = KVCache(layers=2, batch=1, heads=4, block_size=8, head_size=16)
    >>> cache.length, cache.free
    (0, 8)
    """

    def __init__(
        self,
        *,
        layers: int,
        batch: int,
        heads: int,
        block_size: int,
        head_size: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (layers, batch, heads, block_size, head_size)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0  # positions filled, the same in every layer once a forward pass ends

    @property
    def free(self) -> int:
        """Positions left before the cache is full."""
        return self.keys.shape[3] - self.length

    def store(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions' keys and values (B, nh, T, hs) after the cached ones; return all of them,
        (B, nh, length + T, hs)."""
        end = self.length + keys.shape[2]
        self.keys[layer, :, :, self.length : end] = keys
        self.values[layer, :, :, self.length : end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def reset(self) -> None:
        """Forget every position (the tensors are reused)."""
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees itself and the positions before it."""

    def __init__(self, dim: int, heads: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)  # queries, keys and values of all heads in one matmul
        self.projection = nn.Linear(dim, dim, bias=bias)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        queries, keys, values = self.qkv(x).split(C, dim=2)  # 3 × (B, T, C)
        queries = queries.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, T, hs)
        keys = keys.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, T, hs)
        values = values.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, T, hs)
        mask, causal = None, True
        if cache is not None:
            past = cache.length
            keys, values = cache.store(layer, keys, values)  # (B, nh, past + T, hs)
            if past > 0:  # new queries see every cached position and the new ones up to themselves
                causal = False
                if T > 1:
                    mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
        dropout = self.dropout if self.training else 0.0
        y = functional.scaled_dot_product_attention(
            queries, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.residual_dropout(self.projection(y))


class MLP(nn.Module):
    """Linear to 4 × width → GELU (exact, or GPT-2's tanh approximation with `activation='gelu_tanh'`) → linear
    back → dropout."""

    def __init__(self, dim: int, dropout: float, bias: bool, activation: str = "gelu") -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 4 * dim, bias=bias)
        self.activation = nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none")
        self.projection = nn.Linear(4 * dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.projection(self.activation(self.expand(x))))


class Block(nn.Module):
    """A pre-norm Transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(
        self, dim: int, heads: int, dropout: float, bias: bool, activation: str = "gelu", norm_eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim, eps=norm_eps, bias=bias)
        self.attention = CausalSelfAttention(dim, heads, dropout, bias)
        self.mlp_norm = nn.LayerNorm(dim, eps=norm_eps, bias=bias)
        self.mlp = MLP(dim, dropout, bias, activation)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cache, layer)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """A causal language model: token ids (B, T) → next-token logits (B, T, V).

    >>> model = GPT(vocabulary_size=10, block_size=8, layers=1, heads=2, dim=8)
    >>> model(torch.zeros(2, 5, dtype=torch.long)).shape
    torch.Size([2, 5, 10])
    """

    def __init__(
        self,
        *,
        vocabulary_size: int,
        block_size: int,
        layers: int = 4,
        heads: int = 4,
        dim: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
        tie_weights: bool = True,
        activation: str = "gelu",
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.block_size = block_size
        self.gradient_checkpointing = False  # recompute each block in the backward pass (models/checkpointing)
        self.heads = heads
        self.token_embedding = nn.Embedding(vocabulary_size, dim)
        self.position_embedding = nn.Embedding(block_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout, bias, activation, norm_eps) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim, eps=norm_eps, bias=bias)
        self.lm_head = nn.Linear(dim, vocabulary_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.token_embedding.weight
        self.apply(_gpt2_init)
        for name, parameter in self.named_parameters():
            if name.endswith("projection.weight"):  # residual branches: their sum's variance stays ~1 with depth
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @classmethod
    def from_options(cls, options: GPTConfig, vocabulary_size: int) -> GPT:
        """The GPT that `options` describe, for a vocabulary of `vocabulary_size` tokens.

        >>> GPT.from_options(GPTConfig(layers=1, heads=2, dim=8, block_size=4), 10).block_size
        4
        """
        return cls(
            vocabulary_size=vocabulary_size,
            block_size=options.block_size,
            layers=options.layers,
            heads=options.heads,
            dim=options.dim,
            dropout=options.dropout,
            bias=options.bias,
            tie_weights=options.tie_weights,
            activation=options.activation,
            norm_eps=options.norm_eps,
        )

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None, *, last_only: bool = False) -> torch.Tensor:
        """Logits for every position of `tokens` (B, T), or with `last_only` for the last one (B, 1, V).

        With a `cache`, `tokens` continue the positions it holds, and their keys and values are added to it.
        """
        T = tokens.shape[1]
        start = cache.length if cache is not None else 0
        if start + T > self.block_size:
            raise ValueError(f"{start + T} positions exceed the block size {self.block_size}")
        positions = torch.arange(start, start + T, device=tokens.device)  # (T,)
        x = self.dropout(self.token_embedding(tokens) + self.position_embedding(positions))  # (B, T, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer) if cache is not None else run_block(self, block, x)
        if cache is not None:
            cache.length += T
        x = self.final_norm(x[:, -1:] if last_only else x)  # (B, T or 1, C)
        return self.lm_head(x)  # (B, T or 1, V)

    def new_cache(self, batch: int = 1) -> KVCache:
        """An empty key/value cache for `batch` sequences, on this model's device and in its dtype."""
        weight = self.token_embedding.weight
        return KVCache(
            layers=len(self.blocks),
            batch=batch,
            heads=self.heads,
            block_size=self.block_size,
            head_size=weight.shape[1] // self.heads,
            dtype=weight.dtype,
            device=weight.device,
        )

    def num_parameters(self, *, non_embedding: bool = True) -> int:
        """Parameters (a tied weight counted once); `non_embedding` leaves out the position embedding."""
        total = sum(parameter.numel() for parameter in self.parameters())
        return total - self.position_embedding.weight.numel() if non_embedding else total

    def flops_per_token(self) -> float:
        """Training FLOPs per token at full context (as nanoGPT and the PaLM paper count them): 6 per non-embedding
        parameter for the forward and backward matmuls, plus 12 · layers · width · block_size for attention."""
        width = self.token_embedding.weight.shape[1]
        return 6.0 * self.num_parameters() + 12.0 * len(self.blocks) * width * self.block_size


def _gpt2_init(module: nn.Module) -> None:
    """GPT-2's initialisation: normal(0, 0.02) weights for linear layers and embeddings, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
