"""The Transformer encoder: masked attention and pooling (padding never changes a result), positions, and the
pre-norm blocks' shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deepwright.models.transformer import SelfAttention, TransformerEncoder, sinusoidal_positions


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_more_padding_gives_the_same_output(pooling: str, positions: str) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(3, size=8, layers=2, heads=2, pooling=pooling, positions=positions, max_length=16)
    encoder.eval()
    sequence = torch.randn(1, 5, 3)
    with torch.no_grad():
        alone = encoder(sequence)
        short = encoder(torch.cat([sequence, torch.randn(1, 2, 3)], dim=1), torch.tensor([5]))
        batch = torch.cat([torch.cat([sequence, torch.randn(1, 9, 3)], dim=1), torch.randn(1, 14, 3)])
        long = encoder(batch, torch.tensor([5, 14]))
    torch.testing.assert_close(short[0], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(long[0], alone[0], rtol=1e-5, atol=1e-5)


def test_attention_matches_the_written_formula_with_a_key_mask() -> None:
    """softmax(Q Kᵀ / √d + mask) V per head, padded keys given no weight."""
    torch.manual_seed(0)
    attention = SelfAttention(4, heads=2, dropout=0.0).eval()
    x = torch.randn(1, 3, 4)
    key_mask = torch.tensor([[True, True, False]])
    q, k, v = attention.qkv(x).split(4, dim=2)
    expected = []
    for head in range(2):
        part = slice(2 * head, 2 * head + 2)
        scores = q[0, :, part] @ k[0, :, part].T / math.sqrt(2)  # (3, 3)
        scores = scores.masked_fill(~key_mask[0][None, :], float("-inf"))
        expected.append(F.softmax(scores, dim=-1) @ v[0, :, part])
    expected = attention.projection(torch.cat(expected, dim=1))
    with torch.no_grad():
        torch.testing.assert_close(attention(x, key_mask)[0], expected.detach(), rtol=1e-5, atol=1e-6)


def test_shapes_gradients_and_steps() -> None:
    encoder = TransformerEncoder(3, size=8, layers=1, heads=4, pooling="cls", max_length=6)
    out = encoder(torch.randn(2, 6, 3), torch.tensor([6, 3]))
    assert out.shape == (2, 8) == (2, encoder.output_size)
    out.sum().backward()
    assert all(parameter.grad is not None for parameter in encoder.parameters())
    states, mask = encoder.steps(torch.randn(2, 6, 3), torch.tensor([6, 3]))
    assert states.shape == (2, 6, 8)
    assert mask[1].tolist() == [True, True, True, False, False, False]


def test_sequences_longer_than_learned_positions_are_refused() -> None:
    encoder = TransformerEncoder(2, size=4, heads=2, layers=1, positions="learned", max_length=3)
    with pytest.raises(ValueError, match="longer than max_length 3"):
        encoder(torch.zeros(1, 4, 2))


def test_sinusoidal_table() -> None:
    table = sinusoidal_positions(50, 6)
    assert table.shape == (50, 6)
    torch.testing.assert_close(table[7, 0], torch.tensor(math.sin(7.0)))
    torch.testing.assert_close(table[7, 3], torch.tensor(math.cos(7 / 10000 ** (2 / 6))))


def test_heads_must_divide_the_size() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        TransformerEncoder(3, size=10, heads=4)
