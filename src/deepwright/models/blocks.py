"""Model building blocks. They know tensors and shapes, never columns or files.

`MLP` is the seed's stack of Dense layers (Linear → norm → activation → dropout). Activations, norms and
weight initialisers are chosen by name from small tables of functions. The encoders of category codes
(`CodeEmbedding`, `OneHot`) and of token ids as a bag (`BagOfEmbeddings`) register their builders in `ENCODERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepwright.config import BagEncoderConfig, EmbeddingEncoderConfig, OneHotEncoderConfig
from deepwright.models.encoders import EncoderInput
from deepwright.models.pretrained import PretrainedEncoder
from deepwright.registry import ENCODERS

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "BagOfEmbeddings",
    "CodeEmbedding",
    "OneHot",
    "ScalarHead",
    "default_embedding_size",
    "initialize",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}

_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
}

_INITIALIZERS: dict[str, Callable[[torch.Tensor], object]] = {
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": lambda weight: nn.init.kaiming_uniform_(weight, nonlinearity="relu"),
    "kaiming_normal": lambda weight: nn.init.kaiming_normal_(weight, nonlinearity="relu"),
    "normal": lambda weight: nn.init.normal_(weight, std=0.02),
    "orthogonal": nn.init.orthogonal_,
}


def default_embedding_size(num_values: int) -> int:
    """fast.ai's rule of thumb for embedding widths, capped at 50.

    >>> default_embedding_size(5), default_embedding_size(1000)
    (4, 50)
    """
    return max(2, min(50, round(1.6 * num_values**0.56)))


class MLP(nn.Sequential):
    """Fully connected layers: for each size, Linear → (norm) → activation → (dropout).

    >>> MLP(4, [8, 3])(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        input_size: int,
        layers: list[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        modules: list[nn.Module] = []
        size = input_size
        for hidden_size in layers:
            modules.append(nn.Linear(size, hidden_size))
            if norm is not None:
                modules.append(_NORMS[norm](hidden_size))
            modules.append(ACTIVATIONS[activation]())
            if dropout > 0:
                modules.append(nn.Dropout(dropout))
            size = hidden_size
        super().__init__(*modules)
        self.output_size = size


class BagOfEmbeddings(nn.Module):
    """Token ids (B, L), 0 for padding → the tokens' embeddings pooled over the text, order ignored: their mean
    (B, size), their element-wise maximum, or both side by side (`mean_max`, B × 2·size; the "SWEM-concat" of Shen
    et al., 2018). A text of padding only pools to zeros.

    >>> BagOfEmbeddings(10, 4)(torch.tensor([[3, 4, 0], [0, 0, 0]])).shape
    torch.Size([2, 4])
    >>> BagOfEmbeddings(10, 4, pooling="mean_max").output_size
    8
    """

    def __init__(self, num_embeddings: int, size: int, *, dropout: float = 0.0, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in ("mean", "max", "mean_max"):
            raise ValueError(f"pooling must be mean, max or mean_max, not {pooling!r}")
        self.embedding = nn.Embedding(num_embeddings, size, padding_idx=0)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.pooling = pooling
        self.output_size = size * (2 if pooling == "mean_max" else 1)

    @classmethod
    def from_options(cls, options: BagEncoderConfig, shape: EncoderInput) -> BagOfEmbeddings:
        """The bag encoder of `options` over a vocabulary of `shape.size` token ids."""
        return cls(shape.size, options.dim, dropout=options.dropout, pooling=options.pooling)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1)  # (B, L, 1)
        embedded = self.embedding(ids)  # (B, L, size)
        pooled = []
        if self.pooling != "max":
            pooled.append((embedded * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1))  # (B, size)
        if self.pooling != "mean":
            largest = embedded.masked_fill(~mask, float("-inf")).max(dim=1).values  # (B, size)
            pooled.append(largest.masked_fill(~mask.any(dim=1), 0.0))
        return self.dropout(pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1))


class CodeEmbedding(nn.Sequential):
    """Integer codes (B,) → a learned vector per code (B, size), then dropout when asked.

    >>> CodeEmbedding(5, 3, dropout=0.1)(torch.tensor([0, 4])).shape
    torch.Size([2, 3])
    """

    def __init__(self, num_values: int, size: int, *, dropout: float = 0.0) -> None:
        super().__init__(nn.Embedding(num_values, size), *([nn.Dropout(dropout)] if dropout > 0 else []))
        self.output_size = size

    @classmethod
    def from_options(cls, options: EmbeddingEncoderConfig, shape: EncoderInput) -> CodeEmbedding:
        """The embedding of `options` for `shape.size` codes (unset dim: `default_embedding_size`)."""
        return cls(shape.size, options.dim or default_embedding_size(shape.size), dropout=options.dropout)


class OneHot(nn.Module):
    """Integer codes (B,) → one-hot float vectors (B, num_values); no weights."""

    def __init__(self, num_values: int) -> None:
        super().__init__()
        self.num_values = num_values
        self.output_size = num_values

    @classmethod
    def from_options(cls, options: OneHotEncoderConfig, shape: EncoderInput) -> OneHot:
        """The one-hot encoding of `shape.size` codes."""
        return cls(shape.size)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(codes, self.num_values).float()


class ScalarHead(nn.Linear):
    """One output per row: Linear(input_size, 1) with the trailing axis dropped, (B, H) → (B,)."""

    def __init__(self, input_size: int) -> None:
        super().__init__(input_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden).squeeze(-1)


def initialize(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear and convolution weight of `model` with `scheme` (biases to zero), except
    those of a pretrained encoder.

    'default' keeps PyTorch's own initialisation.
    """
    if scheme == "default":
        return
    init = _INITIALIZERS[scheme]
    pretrained = {
        id(inner) for outer in model.modules() if isinstance(outer, PretrainedEncoder) for inner in outer.modules()
    }
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) and id(module) not in pretrained:
            init(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


ENCODERS.register("codes/embedding")(CodeEmbedding.from_options)
ENCODERS.register("codes/onehot")(OneHot.from_options)
ENCODERS.register("tokens/bag")(BagOfEmbeddings.from_options)
