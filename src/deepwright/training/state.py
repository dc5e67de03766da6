"""`TrainState`: everything a training run needs to continue where it stopped, and exactly what is checkpointed.

Both loops (`trainer.fit` over epochs, `lm.train_language_model` over steps) train one. A *round* is what ends
in one log line: an epoch of the epoch loop, the steps between two estimates of the step loop. A checkpoint can be
taken inside a round, at an optimizer step (so no gradients are half accumulated); the `round_*` fields then say
how far the round got, and the loop continues it from there, as if it had never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepwright.training.rng import gather_ranks, own_entry, restore_rng_states, rng_states, world

__all__ = ["TrainState"]

_SCALARS = (
    "epoch",
    "step",
    "best_score",
    "best_epoch",
    "stale_epochs",
    "best_weights",
    "stopped_early",
    "round_batches",
    "round_seconds",
    "round_start_generator",
)


@dataclass
class TrainState:
    """Everything a run needs to continue where it stopped."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any  # a per-step LambdaLR, a per-epoch ReduceLROnPlateau, or None for a constant rate
    generator: torch.Generator
    epoch: int = 0  # epochs completed (the step loop: estimates made)
    step: int = 0  # optimizer steps taken
    best_score: float | None = None
    best_epoch: int = 0
    stale_epochs: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    round_batches: int = 0  # batches done in the round in progress (0: it has not started)
    round_rows: int = 0  # the epoch loop: rows of those batches that this rank trained on
    round_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # their summed loss, this rank's
    round_seconds: float = 0.0  # the seconds they took (a resumed round adds its own to the saved ones)
    round_start_generator: torch.Tensor | None = None  # the epoch loop's shuffling generator as the epoch began

    def start_round(self, device: torch.device) -> None:
        """Begin a round at its first batch, its loss summed on `device`; a round in progress (`round_batches >
        0`, as a checkpoint taken inside it left it) goes on from where it was, its loss moved to `device`."""
        if self.round_batches == 0:
            self.round_rows, self.round_seconds = 0, 0.0
            self.round_loss = torch.zeros((), device=device)
        else:
            self.round_loss = self.round_loss.to(device)

    def start_epoch_order(self) -> None:
        """Before the epoch loop draws an epoch's shuffling order from `generator`: at the epoch's first batch,
        keep the generator's state; inside the epoch (resumed), set the generator back to it, so that the same
        order is drawn again."""
        if self.round_batches == 0:
            self.round_start_generator = self.generator.get_state()
        elif self.round_start_generator is not None:
            self.generator.set_state(self.round_start_generator)

    def end_round(self) -> None:
        """Mark the round done: the next `start_round` begins a new one."""
        self.round_batches = 0

    def checkpoint(self) -> dict[str, Any]:
        """The state as plain data for `save_checkpoint`, with what each rank holds of its own (`ranks`: its
        generators' states, `rng`, and its share of the round, `round_loss` and `round_rows`) and the number of
        processes (`world_size`). In a distributed run every rank must call it (it gathers the ranks' parts). The
        history is left out (it grows each round, and the run's log.jsonl holds it); `restore` takes it back."""
        payload = {name: getattr(self, name) for name in _SCALARS}
        return {
            **payload,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "generator": self.generator.get_state(),
            "ranks": gather_ranks(
                {"rng": rng_states(), "round_loss": self.round_loss.detach().cpu(), "round_rows": self.round_rows}
            ),
            "torch_rng": torch.get_rng_state(),  # this rank's alone, as checkpoints before `rng` held it
            "world_size": world()[1],
        }

    def restore(self, checkpoint: dict[str, Any], history: list[dict[str, float]]) -> None:
        """Continue from what `checkpoint` returned, with the rounds logged before it (`history`)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(checkpoint["schedule"])
        self.generator.set_state(checkpoint["generator"])
        fresh = TrainState(self.model, self.optimizer, self.schedule, self.generator)
        for name in _SCALARS:  # a checkpoint from before the round fields was taken at a round's end
            setattr(self, name, checkpoint.get(name, getattr(fresh, name)))
        mine = own_entry(checkpoint["ranks"]) if "ranks" in checkpoint else {"rng": {"torch": checkpoint["torch_rng"]}}
        self.round_loss = mine.get("round_loss", fresh.round_loss)
        self.round_rows = mine.get("round_rows", fresh.round_rows)
        restore_rng_states(mine["rng"])
        self.history = [record for record in history if record["step"] <= self.step]
