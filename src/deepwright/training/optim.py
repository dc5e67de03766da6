"""Optimizers and learning-rate schedules, built from the trainer config."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepwright.config import OptimizerConfig, ScheduleConfig

__all__ = ["build_optimizer", "build_schedule", "lr_factor"]


def build_optimizer(model: nn.Module, options: OptimizerConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over `model`'s parameters.

    With weight decay, only matrices and embeddings decay; biases and norm gains (1-D tensors) do not. `fused`
    runs Adam and AdamW as one kernel over all parameters (PyTorch's fused implementation, on CPU or CUDA), which
    saves most of the optimizer's time on a model of many small tensors.
    """
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if options.weight_decay > 0:
        groups = [
            {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": options.weight_decay},
            {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": parameters}]
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


def lr_factor(step: int, options: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> float:
    """The multiple of the base learning rate at optimizer step `step` (counted from 0).

    >>> options = ScheduleConfig(type="cosine", warmup_fraction=0.1)
    >>> [round(lr_factor(step, options, 100, 10), 2) for step in (0, 9, 10, 55, 99)]
    [0.1, 1.0, 1.0, 0.49, 0.0]
    """
    warmup_steps = int(options.warmup_fraction * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if options.type == "step":
        return options.gamma ** ((step // max(1, steps_per_epoch)) // options.step_epochs)
    if options.type == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
        return options.min_lr_ratio + (1 - options.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
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
        base_lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if minimize else "max",
            factor=options.gamma,
            patience=options.plateau_epochs - 1,
            min_lr=base_lr * options.min_lr_ratio,
        )
    if options.type == "constant" and int(options.warmup_fraction * total_steps) == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, options, total_steps, steps_per_epoch)
    )
