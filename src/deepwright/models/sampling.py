"""Sampling tokens from a GPT, one at a time: temperature, top-k and top-p (nucleus) filtering, and the loop that
feeds each new token back, with or without the key/value cache.

The context is at most `block_size` tokens. When it is full, it restarts from its most recent half (the cache is
refilled with those tokens in one pass), so a long generation keeps costing about one position per token. Without
the cache the same contexts are recomputed in full at every step, which is what makes the two give the same
tokens for the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.nn import functional

from deepwright.models.gpt import GPT

__all__ = ["generate_tokens", "sample_next_token"]


def sample_next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of `logits` (B, V) → (B, 1). Temperature 0 takes the most likely token; otherwise
    the logits are divided by the temperature, cut to the `top_k` most likely tokens and to the smallest set whose
    probabilities reach `top_p`, and sampled.

    >>> sample_next_token(torch.tensor([[0.0, 3.0, 1.0]]), temperature=0).tolist()
    [[1]]
    >>> sample_next_token(torch.tensor([[0.0, 3.0, 1.0]]), top_k=1).tolist()
    [[1]]
    """
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probabilities = functional.softmax(ordered, dim=-1)
        before = probabilities.cumsum(dim=-1) - probabilities  # probability mass of the more likely tokens
        ordered = ordered.masked_fill(before >= top_p, float("-inf"))  # the most likely token always stays
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    cumulative = functional.softmax(logits, dim=-1).cumsum(dim=-1)  # (B, V)
    # Inverse-CDF sampling: a uniform draw on [0, total) falls into token i's share of the cumulative sum
    # (a fraction of torch.multinomial's cost for one draw).
    draw = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, draw, right=True).clamp(max=logits.shape[-1] - 1)


@torch.inference_mode()
def generate_tokens(
    model: GPT,
    prompt: list[int],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    banned: tuple[int, ...] = (),
) -> Iterator[int]:
    """Yield `max_new_tokens` token ids that continue `prompt` (at least one id; only its last `block_size` are
    read), never one of `banned` (such as padding). The model is put in evaluation mode."""
    if not prompt:
        raise ValueError("generation needs at least one prompt token")
    model.eval()
    block_size = model.block_size
    device = model.token_embedding.weight.device
    tokens = list(prompt[-block_size:])
    start = 0  # where the context begins in `tokens`
    cache = model.new_cache() if use_cache else None
    logits = _forward(model, tokens[start:], cache, device)
    for _ in range(max_new_tokens):
        if banned:
            logits[:, list(banned)] = float("-inf")
        token = int(
            sample_next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)[0, 0]
        )
        yield token
        tokens.append(token)
        if len(tokens) - start > block_size:  # the context is full: restart it from its most recent half
            start = len(tokens) - max(1, block_size // 2)
            if cache is not None:
                cache.reset()
            logits = _forward(model, tokens[start:], cache, device)
        elif cache is not None:
            logits = _forward(model, tokens[-1:], cache, device)
        else:
            logits = _forward(model, tokens[start:], None, device)


def _forward(model: GPT, tokens: list[int], cache: object, device: torch.device) -> torch.Tensor:
    """The last position's logits (1, V) for `tokens` (continuing the cache when one is given)."""
    batch = torch.tensor([tokens], dtype=torch.long, device=device)  # (1, T)
    return model(batch, cache, last_only=True)[:, -1, :]  # (1, V)
