"""A model's parameters block by block: each input's encoder, the combiner and each output's head of a table model;
the embeddings, each block, the final norm and the output layer of a GPT; the top-level parts of any other model.

A parameter shared by two blocks (a GPT's output layer and its token embedding) counts in the first, and the second
is marked "(shared)", so the blocks add up to the model's own count.

>>> from torch import nn
>>> parameter_blocks(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))
[('0', 16), ('1', 0), ('2', 5)]
"""

from __future__ import annotations

from torch import nn

__all__ = ["parameter_blocks", "parameter_count"]

# The list of names a table model (`ECD`) keeps beside each of its module lists.
NAMED_LISTS = {"encoders": "input_names", "heads": "output_names"}


def parameter_count(model: nn.Module) -> int:
    """The model's parameters, each shared one once."""
    return sum(parameter.numel() for parameter in model.parameters())


def parameter_blocks(model: nn.Module) -> list[tuple[str, int]]:
    """(block, parameters) for every top-level part of `model`, a module list's items one by one (named by the
    input or output they serve where the model names them); they sum to `parameter_count(model)`."""
    seen: set[int] = set()
    blocks = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            labels = getattr(model, NAMED_LISTS.get(name, ""), None) or [str(index) for index in range(len(child))]
            parts = [(f"{name}[{label}]", item) for label, item in zip(labels, child)]
        else:
            parts = [(name, child)]
        for label, module in parts:
            count, shared = _new_parameters(module, seen), any(True for _ in module.parameters())
            blocks.append((f"{label} (shared)" if shared and not count else label, count))
    own = _new_parameters(model, seen)  # parameters registered on the model itself
    return blocks + ([("(model)", own)] if own else [])


def _new_parameters(module: nn.Module, seen: set[int]) -> int:
    count = 0
    for parameter in module.parameters():
        if id(parameter) not in seen:
            seen.add(id(parameter))
            count += parameter.numel()
    return count
