"""The recurrent block: the plain RNN is exactly the seed's equations, padding never changes a result, and every
cell, direction and reduction has the shape it promises."""

from __future__ import annotations

import pytest
import torch

from deepwright.models.recurrent import Recurrent

CELLS = ("rnn", "lstm", "gru")
REDUCTIONS = ("last", "mean", "max", "attention")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_plain_rnn_is_the_seed_equations_step_by_step(activation: str) -> None:
    """h_t = σ(W x_t + U h_{t-1} + b), y_t = V h_t + c, computed by hand on a tiny input."""
    torch.manual_seed(0)
    block = Recurrent(2, cell="rnn", hidden_size=3, activation=activation, output_size=2, reduction="mean").eval()
    sigma = torch.tanh if activation == "tanh" else torch.relu
    W, U = block.rnn.weight_ih_l0, block.rnn.weight_hh_l0
    b = block.rnn.bias_ih_l0 + block.rnn.bias_hh_l0  # PyTorch keeps b as two vectors that are only ever added
    V, c = block.projection.weight, block.projection.bias
    x = torch.tensor([[[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.1, 0.1]]])  # (1, 4, 2)

    h = torch.zeros(3)
    expected_y = []
    for t in range(4):
        h = sigma(W @ x[0, t] + U @ h + b)
        expected_y.append(V @ h + c)
    expected_y = torch.stack(expected_y)  # (4, 2)

    with torch.no_grad():
        outputs, mask = block.steps(x)
        assert mask is None
        torch.testing.assert_close(outputs[0], expected_y)
        torch.testing.assert_close(block(x)[0], expected_y.mean(dim=0))
        last = Recurrent(2, cell="rnn", hidden_size=3, activation=activation, output_size=2).eval()
        last.load_state_dict(block.state_dict())
        torch.testing.assert_close(last(x)[0], expected_y[-1])


def test_plain_rnn_by_hand_on_a_padded_row() -> None:
    """A row shorter than the batch: its last output is the hand-computed one after its own last step."""
    torch.manual_seed(1)
    block = Recurrent(1, cell="rnn", hidden_size=2).eval()
    W, U = block.rnn.weight_ih_l0, block.rnn.weight_hh_l0
    b = block.rnn.bias_ih_l0 + block.rnn.bias_hh_l0
    x = torch.tensor([[[1.0], [2.0], [3.0]], [[-1.0], [0.5], [99.0]]])  # row 2: two steps, then padding
    h = torch.zeros(2)
    for t in range(2):
        h = torch.tanh(W @ x[1, t] + U @ h + b)
    with torch.no_grad():
        torch.testing.assert_close(block(x, torch.tensor([3, 2]))[1], h)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_more_padding_gives_the_same_output(cell: str, reduction: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    block = Recurrent(
        3, cell=cell, hidden_size=4, layers=2, bidirectional=bidirectional, reduction=reduction, output_size=5
    ).eval()
    sequence = torch.randn(1, 4, 3)
    short = torch.cat([sequence, torch.randn(1, 2, 3)], dim=1)  # padding holds garbage: it must not matter
    long = torch.cat([sequence, torch.randn(1, 7, 3)], dim=1)
    other = torch.randn(1, short.shape[1], 3)  # a full-length neighbour in the batch
    with torch.no_grad():
        alone = block(sequence)
        padded = block(torch.cat([short, other]), torch.tensor([4, short.shape[1]]))
        more = block(long, torch.tensor([4]))
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(more[0], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_shapes_and_gradients(cell: str, reduction: str) -> None:
    block = Recurrent(3, cell=cell, hidden_size=4, bidirectional=True, reduction=reduction)
    assert block.output_size == 8
    out = block(torch.randn(5, 6, 3), torch.tensor([6, 1, 3, 6, 2]))
    assert out.shape == (5, 8)
    out.sum().backward()
    assert all(parameter.grad is not None for parameter in block.parameters())


def test_bidirectional_last_is_forward_end_and_backward_start() -> None:
    torch.manual_seed(0)
    block = Recurrent(2, cell="gru", hidden_size=3, bidirectional=True).eval()
    x = torch.randn(1, 5, 2)
    with torch.no_grad():
        states, _ = block.steps(x)  # (1, 5, 6): forward states then backward states
        last = block(x)
    torch.testing.assert_close(last[0, :3], states[0, -1, :3])
    torch.testing.assert_close(last[0, 3:], states[0, 0, 3:])


def test_padded_steps_output_zero() -> None:
    block = Recurrent(2, cell="lstm", hidden_size=3, output_size=2, reduction="mean").eval()
    with torch.no_grad():
        outputs, mask = block.steps(torch.randn(2, 4, 2), torch.tensor([4, 2]))
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert torch.count_nonzero(outputs[1, 2:]) == 0


def test_bad_options_are_errors() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        Recurrent(2, cell="transformer")
    with pytest.raises(ValueError, match="reduction must be one of"):
        Recurrent(2, reduction="sum")
