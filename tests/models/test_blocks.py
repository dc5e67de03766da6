"""Model blocks: the MLP (shapes, activations, norms, dropout), heads, one-hot, initialisers, the combiner."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepwright.config import BagEncoderConfig, ConcatCombinerConfig, EmbeddingEncoderConfig, OneHotEncoderConfig
from deepwright.models.blocks import (
    ACTIVATIONS,
    MLP,
    BagOfEmbeddings,
    CodeEmbedding,
    OneHot,
    ScalarHead,
    default_embedding_size,
    initialize,
)
from deepwright.models.combiners import ConcatCombiner
from deepwright.models.encoders import EncoderInput, build_encoder, encoder_width
from deepwright.registry import COMBINERS


@pytest.mark.parametrize("layers", [[], [8], [16, 8, 3]])
def test_mlp_shapes(layers: list[int]) -> None:
    mlp = MLP(5, layers)
    assert mlp(torch.zeros(4, 5)).shape == (4, layers[-1] if layers else 5)
    assert mlp.output_size == (layers[-1] if layers else 5)
    linears = [module for module in mlp if isinstance(module, nn.Linear)]
    assert [layer.out_features for layer in linears] == layers


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mlp_activations(activation: str) -> None:
    mlp = MLP(3, [4, 4], activation=activation)
    assert sum(isinstance(module, type(ACTIVATIONS[activation]())) for module in mlp) == 2
    out = mlp(torch.randn(2, 3))
    if activation == "relu":
        assert (out >= 0).all()
    if activation == "sigmoid":
        assert ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize(("norm", "norm_class"), [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_mlp_norms_follow_each_linear(norm: str, norm_class: type) -> None:
    mlp = MLP(3, [6, 2], norm=norm)
    kinds = [type(module) for module in mlp]
    assert kinds == [nn.Linear, norm_class, nn.ReLU, nn.Linear, norm_class, nn.ReLU]
    mlp.train()
    hidden = mlp[1](mlp[0](torch.randn(16, 3)))
    assert hidden.mean().item() == pytest.approx(0.0, abs=1e-5)  # normalised


def test_mlp_without_norm_has_none() -> None:
    assert not any(isinstance(module, (nn.BatchNorm1d, nn.LayerNorm)) for module in MLP(3, [4]))


def test_mlp_dropout_only_when_asked_and_only_in_training() -> None:
    assert not any(isinstance(module, nn.Dropout) for module in MLP(3, [4], dropout=0.0))
    mlp = MLP(8, [512], activation="sigmoid", dropout=0.5)
    assert sum(isinstance(module, nn.Dropout) for module in mlp) == 1
    x = torch.randn(4, 8)
    mlp.train()
    assert (mlp(x) == 0).float().mean() > 0.3
    mlp.eval()
    assert (mlp(x) != 0).all()
    assert torch.equal(mlp(x), mlp(x))


def test_code_and_bag_encoders_are_dispatched_by_type() -> None:
    embedding = build_encoder(EmbeddingEncoderConfig(dropout=0.5), EncoderInput("codes", 5))
    assert isinstance(embedding, CodeEmbedding) and isinstance(embedding[1], nn.Dropout)
    assert embedding.output_size == default_embedding_size(5) == embedding[0].embedding_dim
    assert isinstance(build_encoder(OneHotEncoderConfig(type="onehot"), EncoderInput("codes", 5)), OneHot)
    bag = build_encoder(BagEncoderConfig(dim=4, pooling="mean"), EncoderInput("tokens", 10))
    assert isinstance(bag, BagOfEmbeddings) and bag.output_size == 4


def test_encoder_width_builds_nothing_and_draws_no_random_numbers() -> None:
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert encoder_width(BagEncoderConfig(dim=4), EncoderInput("tokens", 10)) == 8  # mean_max: twice the width
    assert torch.equal(torch.get_rng_state(), state)


def test_scalar_head_drops_the_trailing_axis() -> None:
    head = ScalarHead(7)
    assert head(torch.zeros(3, 7)).shape == (3,)


def test_one_hot() -> None:
    encoder = OneHot(4)
    assert encoder.output_size == 4
    assert encoder(torch.tensor([3, 0])).tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]


def test_concat_combiner() -> None:
    combiner = ConcatCombiner(ConcatCombinerConfig(dims=[16], dropout=0.1, norm="layer"), [3, 5])
    assert combiner([torch.zeros(2, 3), torch.zeros(2, 5)]).shape == (2, 16)
    assert combiner.output_size == 16
    assert combiner.mlp[0].in_features == 8
    passthrough = ConcatCombiner(ConcatCombinerConfig(dims=[]), [4])
    x = torch.randn(2, 4)
    assert torch.equal(passthrough([x]), x)
    assert COMBINERS.get("concat") is ConcatCombiner


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Conv1d(2, 4, 3), nn.Linear(64, 32))


@pytest.mark.parametrize(
    "scheme", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal", "orthogonal"]
)
def test_initializers_reset_weights_and_zero_biases(scheme: str) -> None:
    default, network = model(), model()
    torch.manual_seed(1)
    initialize(network, scheme)
    for before, after in zip(default.modules(), network.modules()):
        if isinstance(after, (nn.Linear, nn.Conv1d)):
            assert not torch.equal(before.weight, after.weight)
            assert torch.count_nonzero(after.bias) == 0
    square = network[0].weight.detach()
    if scheme == "normal":
        assert square.std().item() == pytest.approx(0.02, rel=0.1)
    if scheme == "orthogonal":
        assert torch.allclose(square @ square.T, torch.eye(64), atol=1e-4)
    if scheme.startswith("kaiming"):
        assert square.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)
    if scheme.startswith("xavier"):
        assert square.std().item() == pytest.approx((2 / 128) ** 0.5, rel=0.1)


def test_default_initializer_keeps_pytorch_weights() -> None:
    default, network = model(), model()
    initialize(network, "default")
    for before, after in zip(default.parameters(), network.parameters()):
        assert torch.equal(before, after)
