"""`trainer.gradient_checkpointing`: every block stack recomputes its blocks in the backward pass, with the same
loss and gradients as without (dropout included: the recomputation replays the forward pass's random state)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepwright.models.checkpointing import use_gradient_checkpointing
from deepwright.models.gpt import GPT
from deepwright.models.recurrent import Recurrent
from deepwright.models.transformer import TransformerEncoder


def _loss_and_gradients(model: nn.Module, inputs: tuple, checkpointing: bool) -> tuple[float, list[torch.Tensor]]:
    use_gradient_checkpointing(model, checkpointing)
    model.train()
    model.zero_grad()
    torch.manual_seed(3)
    loss = model(*inputs).float().pow(2).mean()
    loss.backward()
    return loss.item(), [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]


STACKS = {
    "gpt": lambda: (
        GPT(vocabulary_size=11, block_size=8, layers=2, heads=2, dim=8, dropout=0.2),
        (torch.randint(11, (3, 8)),),
    ),
    "transformer": lambda: (
        TransformerEncoder(4, size=8, layers=2, heads=2, dropout=0.2),
        (torch.randn(3, 5, 4), torch.tensor([5, 3, 2])),
    ),
    "recurrent": lambda: (
        Recurrent(4, cell="lstm", hidden_size=6, layers=2, dropout=0.2, reduction="mean"),
        (torch.randn(3, 5, 4), torch.tensor([5, 3, 2])),
    ),
}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_checkpointing_gives_the_same_loss_and_gradients(stack: str) -> None:
    torch.manual_seed(0)
    model, inputs = STACKS[stack]()
    assert use_gradient_checkpointing(model, True) == 1
    plain_loss, plain_gradients = _loss_and_gradients(model, inputs, checkpointing=False)
    loss, gradients = _loss_and_gradients(model, inputs, checkpointing=True)
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    assert len(gradients) == len(plain_gradients)
    for gradient, plain in zip(gradients, plain_gradients):
        torch.testing.assert_close(gradient, plain, rtol=1e-5, atol=1e-6)


def test_checkpointing_is_off_in_evaluation_and_generation() -> None:
    model = GPT(vocabulary_size=11, block_size=8, layers=1, heads=2, dim=8)
    use_gradient_checkpointing(model, True)
    model.eval()
    with torch.no_grad():
        cache = model.new_cache()
        assert model(torch.zeros(1, 3, dtype=torch.long), cache).shape == (1, 3, 11)
