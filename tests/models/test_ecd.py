"""The ECD model: inputs by name → encoders → combiner → heads by name, whatever characters names hold."""

from __future__ import annotations

import torch
from torch import nn

from deepwright.config import ConcatCombinerConfig
from deepwright.models.blocks import ScalarHead
from deepwright.models.combiners import ConcatCombiner
from deepwright.models.ecd import ECD, predict_logits

NAMES = ["price.usd", "colour/name", "a b"]  # module names could not hold these


def build() -> ECD:
    torch.manual_seed(0)
    encoders = [nn.Identity(), nn.Embedding(5, 3), nn.Embedding(4, 2)]
    combiner = ConcatCombiner(ConcatCombinerConfig(dims=[8]), [2, 3, 2])
    heads = [nn.Linear(8, 4), ScalarHead(8)]
    return ECD(NAMES, encoders, combiner, ["label.class", "value.x"], heads)


def inputs(rows: int) -> dict[str, torch.Tensor]:
    return {
        "price.usd": torch.randn(rows, 2),
        "colour/name": torch.randint(0, 5, (rows,)),
        "a b": torch.randint(0, 4, (rows,)),
    }


def test_forward_with_dots_and_odd_characters_in_names() -> None:
    model = build()
    logits = model(inputs(6))
    assert set(logits) == {"label.class", "value.x"}
    assert logits["label.class"].shape == (6, 4)
    assert logits["value.x"].shape == (6,)
    assert all(name.split(".")[0] in ("encoders", "combiner", "heads") for name in model.state_dict())


def test_gradients_reach_every_encoder() -> None:
    model = build()
    logits = model(inputs(6))
    (logits["label.class"].sum() + logits["value.x"].sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_predict_logits_batches_and_evaluates() -> None:
    model = build()
    torch.manual_seed(1)
    data = inputs(10)
    model.train()
    whole = predict_logits(model, data, batch_size=1024)
    assert not model.training
    pieces = predict_logits(model, data, batch_size=3)
    for name in whole:
        assert whole[name].shape[0] == 10
        assert torch.allclose(whole[name], pieces[name], atol=1e-6)
        assert not whole[name].requires_grad
