"""The GPT decoder: shapes, causality, weight tying, GPT-2 initialisation, the key/value cache, and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from deepwright.models.gpt import GPT
from deepwright.models.sampling import generate_tokens, sample_next_token


def tiny(**options: object) -> GPT:
    torch.manual_seed(0)
    settings = {"vocabulary_size": 20, "block_size": 16, "layers": 2, "heads": 2, "dim": 16, **options}
    return GPT(**settings).eval()


def test_logits_for_every_position_or_the_last() -> None:
    model = tiny()
    tokens = torch.randint(20, (3, 7))
    assert model(tokens).shape == (3, 7, 20)
    assert torch.allclose(model(tokens, last_only=True)[:, 0], model(tokens)[:, -1], atol=1e-6)


def test_a_position_never_sees_the_tokens_after_it() -> None:
    model = tiny()
    tokens = torch.randint(20, (1, 10))
    changed = tokens.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 20
    assert torch.allclose(model(tokens)[0, :6], model(changed)[0, :6], atol=1e-6)
    assert not torch.allclose(model(tokens)[0, 6:], model(changed)[0, 6:])


def test_weight_tying_and_gpt2_initialisation() -> None:
    model = tiny(layers=4, dim=64, heads=4, vocabulary_size=500)
    assert model.lm_head.weight is model.token_embedding.weight
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    residual = model.blocks[0].attention.projection.weight
    assert residual.std().item() == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.1)
    untied = tiny(tie_weights=False)
    assert untied.lm_head.weight is not untied.token_embedding.weight
    assert untied.num_parameters() == tiny().num_parameters() + 20 * 16


def test_biases_are_optional() -> None:
    assert tiny().blocks[0].attention.qkv.bias is None
    with_bias = tiny(bias=True)
    assert with_bias.blocks[0].attention.qkv.bias is not None
    assert torch.count_nonzero(with_bias.blocks[0].attention.qkv.bias) == 0


def test_longer_than_the_block_size_is_refused() -> None:
    with pytest.raises(ValueError, match="17 positions exceed the block size 16"):
        tiny()(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of heads"):
        GPT(vocabulary_size=5, block_size=4, heads=3, dim=16)


def test_the_cache_gives_the_logits_of_a_full_forward_pass() -> None:
    """Prefill, then several tokens at once, then one at a time: every position's logits match the uncached pass."""
    model = tiny()
    tokens = torch.randint(20, (2, 12))
    expected = model(tokens)
    cache = model.new_cache(batch=2)
    pieces = [model(tokens[:, :5], cache), model(tokens[:, 5:8], cache)]
    pieces += [model(tokens[:, index : index + 1], cache) for index in range(8, 12)]
    assert cache.length == 12 and cache.free == 4
    assert torch.allclose(torch.cat(pieces, dim=1), expected, atol=1e-5)
    cache.reset()
    assert cache.length == 0


def test_flops_per_token_counts_matmuls_and_attention() -> None:
    model = tiny()
    non_embedding = model.num_parameters()
    assert non_embedding == model.num_parameters(non_embedding=False) - 16 * 16
    assert model.flops_per_token() == 6 * non_embedding + 12 * 2 * 16 * 16


def test_temperature_top_k_and_top_p() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    assert sample_next_token(logits, temperature=0).item() == 0
    generator = torch.Generator().manual_seed(0)
    draws = {sample_next_token(logits, top_k=2, generator=generator).item() for _ in range(200)}
    assert draws == {0, 1}
    # probabilities ≈ 0.61, 0.22, 0.14, 0.03: top_p 0.7 keeps the first two (0.61 < 0.7, 0.83 ≥ 0.7)
    draws = {sample_next_token(logits, top_p=0.7, generator=generator).item() for _ in range(200)}
    assert draws == {0, 1}
    assert {sample_next_token(logits, top_p=0.1, generator=generator).item() for _ in range(20)} == {0}
    cold = [sample_next_token(logits, temperature=0.05, generator=generator).item() for _ in range(50)]
    assert cold.count(0) == 50


@pytest.mark.parametrize(
    "options",
    [{"temperature": 1.0}, {"temperature": 0.8, "top_k": 5}, {"temperature": 1.2, "top_p": 0.9}, {"temperature": 0}],
    ids=["plain", "top-k", "top-p", "greedy"],
)
def test_cached_and_uncached_generation_give_the_same_tokens(options: dict) -> None:
    """With a fixed seed, the cache changes the cost of a token, not the token: 60 new tokens on a block of 16
    restart the context several times."""
    model = tiny()
    runs = [
        list(
            generate_tokens(
                model,
                [3, 1, 4, 1, 5],
                max_new_tokens=60,
                generator=torch.Generator().manual_seed(7),
                use_cache=use_cache,
                **options,
            )
        )
        for use_cache in (True, False)
    ]
    assert len(runs[0]) == 60
    assert runs[0] == runs[1]


def test_generation_reads_only_the_last_block_of_a_long_prompt_and_skips_banned_tokens() -> None:
    model = tiny()
    long_prompt = list(range(20)) * 3
    generated = list(
        generate_tokens(model, long_prompt, max_new_tokens=5, temperature=0, banned=(0,))
    )  # greedy: deterministic
    again = list(generate_tokens(model, long_prompt[-16:], max_new_tokens=5, temperature=0, banned=(0,)))
    assert generated == again
    sampled = list(generate_tokens(model, [1], max_new_tokens=200, banned=(0, 1), generator=torch.Generator()))
    assert 0 not in sampled and 1 not in sampled
    with pytest.raises(ValueError, match="at least one prompt token"):
        next(generate_tokens(model, [], max_new_tokens=1))
