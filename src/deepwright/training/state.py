"""`TrainState`: everything a training run needs to continue where it stopped, and exactly what is checkpointed.

Both loops (`trainer.fit` over epochs, `lm.train_language_model` over steps) train one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["TrainState"]


@dataclass
class TrainState:
    """Everything a run needs to continue where it stopped."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any  # a per-step LambdaLR, a per-epoch ReduceLROnPlateau, or None for a constant rate
    generator: torch.Generator
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_score: float | None = None
    best_epoch: int = 0
    stale_epochs: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    def checkpoint(self) -> dict[str, Any]:
        """The state as plain data for `save_checkpoint`. The history is left out (it grows each epoch, and the
        run's log.jsonl holds it); `restore` takes it back from there."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "best_weights": self.best_weights,
            "stopped_early": self.stopped_early,
        }

    def restore(self, checkpoint: dict[str, Any], history: list[dict[str, float]]) -> None:
        """Continue from what `checkpoint` returned, with the epochs logged before it (`history`)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(checkpoint["schedule"])
        self.generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["torch_rng"])
        for name in (
            "epoch",
            "step",
            "best_score",
            "best_epoch",
            "stale_epochs",
            "best_weights",
            "stopped_early",
        ):
            setattr(self, name, checkpoint[name])
        self.history = [record for record in history if record["step"] <= self.step]
