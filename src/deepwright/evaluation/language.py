"""Language-model metrics: the loss of predicting each token of a text, and its perplexity."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

__all__ = ["corpus_loss", "perplexity"]


def perplexity(loss: float) -> float:
    """exp(loss): the number of equally likely tokens the model hesitates between, on average.

    >>> round(perplexity(math.log(65)), 6)
    65.0
    """
    return math.exp(min(loss, 700.0))  # exp overflows a float beyond ~709


@torch.inference_mode()
def corpus_loss(model: nn.Module, ids: torch.Tensor, block_size: int, *, batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy (nats per token) and perplexity of predicting every token of `ids` but the first, reading
    it in consecutive blocks of `block_size` (each token seen with the tokens before it in its block), in
    evaluation mode: {"loss", "perplexity", "tokens"}. `model` maps token ids (B, T) to logits (B, T, V)."""
    if len(ids) < 2:
        raise ValueError("a loss needs at least two tokens")
    model.eval()
    device = next(model.parameters()).device
    inputs, targets = ids[:-1].to(device), ids[1:].to(device)
    full = len(inputs) // block_size * block_size
    pieces = [(inputs[:full].view(-1, block_size), targets[:full].view(-1, block_size))] if full else []
    if full < len(inputs):
        pieces.append((inputs[full:].unsqueeze(0), targets[full:].unsqueeze(0)))
    total = torch.zeros((), dtype=torch.float64, device=device)
    for block_inputs, block_targets in pieces:
        for start in range(0, len(block_inputs), batch_size):
            logits = model(block_inputs[start : start + batch_size])  # (b, T, V)
            chosen = block_targets[start : start + batch_size].flatten()
            total += functional.cross_entropy(logits.flatten(0, 1).float(), chosen, reduction="sum")
    loss = float(total) / len(targets)
    return {"loss": loss, "perplexity": perplexity(loss), "tokens": len(targets)}
