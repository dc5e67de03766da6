"""Gradient checkpointing (`trainer.gradient_checkpointing`): a block's activations are recomputed in the backward
pass instead of being kept from the forward pass, trading about a third more compute for memory that no longer
grows with depth.

A block stack (the GPT, the Transformer encoder, the recurrent block) has a `gradient_checkpointing` attribute and
runs each block through `run_block`; `use_gradient_checkpointing` turns it on or off for every stack in a model.
The dropout masks of the recomputation are the forward pass's (`torch.utils.checkpoint` restores the random
state), so the loss and the gradients are the same as without it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["run_block", "use_gradient_checkpointing"]


def run_block(owner: nn.Module, block: Any, *inputs: Any) -> Any:
    """`block(*inputs)`, checkpointed when `owner` (the stack `block` belongs to) trains with gradient
    checkpointing on and gradients are being recorded."""
    if getattr(owner, "gradient_checkpointing", False) and owner.training and torch.is_grad_enabled():
        return checkpoint(block, *inputs, use_reentrant=False)
    return block(*inputs)


def use_gradient_checkpointing(model: nn.Module, enabled: bool) -> int:
    """Turn gradient checkpointing on or off in every block stack of `model`; return how many stacks it has.

    >>> from deepwright.models.gpt import GPT
    >>> use_gradient_checkpointing(GPT(vocabulary_size=5, block_size=4, layers=1, heads=1, dim=4), True)
    1
    """
    stacks = [module for module in model.modules() if hasattr(module, "gradient_checkpointing")]
    for module in stacks:
        module.gradient_checkpointing = enabled
    return len(stacks)
