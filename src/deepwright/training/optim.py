"""Optimizers and learning-rate schedules, built from the trainer config."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepwright.config import OptimizerConfig, ScheduleConfig
from deepwright.models.pretrained import PretrainedEncoder

__all__ = ["build_optimizer", "build_schedule", "lr_factor"]


def build_optimizer(model: nn.Module, options: OptimizerConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over `model`'s parameters.

    With weight decay, only matrices and embeddings decay; biases and norm gains (1-D tensors) do not. `fused`
    runs Adam and AdamW as one kernel over all parameters (PyTorch's fused implementation, on CPU or CUDA), which
    saves most of the optimizer's time on a model of many small tensors. The weights of a pretrained encoder
    learn at its own rate (`encoder.lr`, decayed layer by layer with `encoder.layer_decay`), in groups of their
    own after the model's other parameters, which learn at `options.lr`.
    """
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    pretrained = [
        group
        for module in model.modules()
        if isinstance(module, PretrainedEncoder)
        for group in module.learning_rates()
    ]
    taken = {id(parameter) for group, _ in pretrained for parameter in group}
    groups = _decay_groups([parameter for parameter in parameters if id(parameter) not in taken], options.weight_decay)
    for group, lr in pretrained:
        groups += [{**part, "lr": lr} for part in _decay_groups(group, options.weight_decay)]
    if options.type == "sgd":
        return torch.optim.SGD(
            groups,
            lr=options.lr,
            momentum=options.momentum,
            nesterov=options.nesterov,
            weight_decay=options.weight_decay,
        )
    optimizer_class = torch.optim.AdamW if options.type == "adamw" else torch.optim.Adam
    fused = fused and all(parameter.device.type in ("cpu", "cuda") for parameter in parameters)
    return optimizer_class(
        groups, lr=options.lr, betas=options.betas, weight_decay=options.weight_decay, fused=fused or None
    )


def _decay_groups(parameters: list[nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """With weight decay: the matrices and embeddings, which decay, and the 1-D tensors, which do not."""
    if weight_decay > 0:
        return [
            {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
        ]
    return [{"params": parameters}]


def lr_factor(step: int, options: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> float:
    """The multiple of the base learning rate at optimizer step `step` (counted from 0).

    >>> options = ScheduleConfig(type="cosine", warmup_fraction=0.1)
    >>> [round(lr_factor(step, options, 100, 10), 2) for step in (0, 9, 10, 55, 99)]
    [0.1, 1.0, 1.0, 0.49, 0.0]
    >>> options = ScheduleConfig(type="linear", warmup_fraction=0.1)
    >>> [round(lr_factor(step, options, 100, 10), 2) for step in (0, 9, 10, 55, 99)]
    [0.1, 1.0, 1.0, 0.49, 0.0]
    """
    warmup_steps = int(options.warmup_fraction * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if options.type == "step":
        return options.gamma ** ((step // max(1, steps_per_epoch)) // options.step_epochs)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
    if options.type == "cosine":
        return options.min_lr_ratio + (1 - options.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if options.type == "linear":
        return options.min_lr_ratio + (1 - options.min_lr_ratio) * (1 - progress)
    return 1.0


def build_schedule(
    optimizer: torch.optim.Optimizer,
    options: ScheduleConfig,
    total_steps: int,
    steps_per_epoch: int,
    *,
    minimize: bool = True,
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """A per-step scheduler applying `lr_factor` to every parameter group, a per-epoch `ReduceLROnPlateau`
    for 'plateau' (minimising or maximising the watched metric), or None for a constant rate."""
    if options.type == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if minimize else "max",
            factor=options.gamma,
            patience=options.plateau_epochs - 1,
            min_lr=[group["lr"] * options.min_lr_ratio for group in optimizer.param_groups],
        )
    if options.type == "constant" and int(options.warmup_fraction * total_steps) == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, options, total_steps, steps_per_epoch)
    )
