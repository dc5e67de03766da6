"""The training loop: one readable function over a `TrainState`, which is also exactly what is checkpointed.

`fit` knows tensors, a loss function and a validation function; it knows nothing of columns or files.
Mixed precision (bf16 autocast), gradient accumulation and gradient clipping are options of the same loop.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepwright.config import TrainerConfig
from deepwright.data.batches import TensorTable, batch_bounds, iterate_batches, num_rows
from deepwright.errors import ConfigError
from deepwright.evaluation.metrics import lower_is_better
from deepwright.evaluation.report import distinct_metrics
from deepwright.training.checkpoint import save_checkpoint
from deepwright.training.optim import build_optimizer, build_schedule

__all__ = ["TrainState", "autocast", "check_options", "create_state", "fit"]

LossFunction = Callable[[dict[str, torch.Tensor], TensorTable], torch.Tensor]
# (model, table) → flat metrics such as {"loss": 0.31, "accuracy": 0.9}; fit prefixes them with "val_".
ValidateFunction = Callable[[nn.Module, TensorTable], dict[str, float]]


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


def create_state(model: nn.Module, options: TrainerConfig, num_train_rows: int) -> TrainState:
    """A fresh state: optimizer, per-step schedule over the planned steps, and a seeded shuffling generator."""
    batches_per_epoch = len(batch_bounds(num_train_rows, options.batch_size))
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / options.gradient_accumulation))
    optimizer = build_optimizer(model, options.optimizer)
    schedule = build_schedule(
        optimizer,
        options.schedule,
        steps_per_epoch * options.epochs,
        steps_per_epoch,
        minimize=_minimize(options)[1],
    )
    generator = torch.Generator().manual_seed(options.seed)
    return TrainState(model=model, optimizer=optimizer, schedule=schedule, generator=generator)


def fit(
    state: TrainState,
    train: TensorTable,
    validation: TensorTable | None,
    *,
    options: TrainerConfig,
    loss_fn: LossFunction,
    validate: ValidateFunction,
    log_path: Path | None = None,
    checkpoint_path: Path | None = None,
    progress: bool = True,
) -> TrainState:
    """Train `state.model` from `state.epoch` to `options.epochs` (or until early stopping); return the state.

    Each epoch: shuffle, step through batches, validate, log one JSON line, check early stopping, and save a
    checkpoint. With early stopping the best epoch's weights are restored at the end.
    """
    check_options(state, validation, options, validate)
    stopping = options.early_stopping
    plateau = isinstance(state.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau)
    model = state.model
    watched, minimize = _minimize(options)
    device = next(model.parameters()).device
    mixed_precision = autocast(options.precision, device)
    reporter = _Reporter(options.epochs, num_rows(train), enabled=progress)
    accumulation = options.gradient_accumulation
    with reporter:
        while state.epoch < options.epochs and not state.stopped_early:
            model.train()
            started = time.perf_counter()
            running_loss = torch.zeros((), device=device)
            seen = 0
            reporter.start_epoch(state.epoch + 1)
            batches = iterate_batches(train, options.batch_size, generator=state.generator, device=device)
            for index, batch in enumerate(batches):
                with mixed_precision:
                    loss = loss_fn(model(batch), batch)
                (loss / accumulation if accumulation > 1 else loss).backward()
                rows = num_rows(batch)
                if (index + 1) % accumulation == 0 or seen + rows == num_rows(train):
                    if options.gradient_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), options.gradient_clip)
                    state.optimizer.step()
                    if state.schedule is not None and not plateau:
                        state.schedule.step()
                    state.optimizer.zero_grad(set_to_none=True)
                    state.step += 1
                running_loss += loss.detach() * rows
                seen += rows
                reporter.advance(rows, running_loss, seen)
            seconds = time.perf_counter() - started
            state.epoch += 1
            record = {
                "epoch": state.epoch,
                "step": state.step,
                "train_loss": float(running_loss) / max(1, seen),
                "lr": state.optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 4),
                "samples_per_second": round(seen / seconds, 1),
            }
            if validation:
                record.update({f"val_{name}": value for name, value in validate(model, validation).items()})
            if plateau:
                state.schedule.step(record[watched])
            if stopping is not None:
                _early_stopping_step(state, record[watched], minimize, stopping.min_delta, stopping.patience)
            state.history.append(record)
            reporter.end_epoch(record)
            if log_path is not None:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, state.checkpoint())
    if stopping is not None and state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return state


def check_options(
    state: TrainState, validation: TensorTable | None, options: TrainerConfig, validate: ValidateFunction
) -> None:
    """Raise a `ConfigError` before any training when the options cannot work with this data: early stopping
    or the plateau schedule without validation rows, or a watched metric this model does not compute."""
    stopping = options.early_stopping
    plateau = options.schedule.type == "plateau"
    for needed, key in ((stopping is not None, "trainer.early_stopping"), (plateau, "the plateau schedule")):
        if needed and not validation:
            raise ConfigError(
                f"{key} needs validation rows; give preprocessing.split.fractions a validation share, "
                "or choose another option"
            )
    if stopping is not None or plateau:
        _check_metric_name(_minimize(options)[0], state.model, validation, validate)


def _minimize(options: TrainerConfig) -> tuple[str, bool]:
    """The validation metric that early stopping and the plateau schedule watch, and whether lower is better."""
    stopping = options.early_stopping
    if stopping is None:
        return "val_loss", True
    if stopping.mode == "auto":
        return stopping.metric, lower_is_better(stopping.metric)
    return stopping.metric, stopping.mode == "min"


def _early_stopping_step(state: TrainState, score: float, minimize: bool, min_delta: float, patience: int) -> None:
    improved = state.best_score is None or (
        score < state.best_score - min_delta if minimize else score > state.best_score + min_delta
    )
    if improved:
        state.best_score, state.best_epoch, state.stale_epochs = score, state.epoch, 0
        state.best_weights = copy.deepcopy(state.model.state_dict())
    else:
        state.stale_epochs += 1
        state.stopped_early = state.stale_epochs >= patience


def _check_metric_name(metric: str, model: nn.Module, validation: TensorTable, validate: ValidateFunction) -> None:
    """Fail before training, not after an epoch, when the early-stopping metric does not exist."""
    sample = {name: tensor[:2] for name, tensor in validation.items()}
    available = [f"val_{name}" for name in validate(model, sample)]
    if metric not in available:
        raise ConfigError(
            f"trainer.early_stopping.metric: {metric!r} is not computed for this model; choose one of "
            + ", ".join(available)
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context that runs a forward pass at `precision`: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _Reporter:
    """A rich progress bar on a terminal (loss and samples/s, redrawn at most 5 times a second), else one line
    per epoch; nothing when disabled."""

    def __init__(self, epochs: int, rows_per_epoch: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.rows_per_epoch = rows_per_epoch
        self.interactive = enabled and sys.stderr.isatty()
        self._progress = None
        self._task = None
        self._next_draw = 0.0
        self._next_line = 0.0
        self._epoch_started = 0.0

    def __enter__(self) -> _Reporter:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[metric]}"),
                TextColumn("{task.fields[speed]} samples/s"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)

    def start_epoch(self, epoch: int) -> None:
        self._epoch_started = time.perf_counter()
        self._next_draw = self._epoch_started + 0.2
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train",
                total=self.rows_per_epoch,
                epoch=epoch,
                epochs=self.epochs,
                loss="…",
                metric="",
                speed="…",
            )

    def advance(self, rows: int, running_loss: torch.Tensor, seen: int) -> None:
        if self._progress is None:
            return
        now = time.perf_counter()
        if now < self._next_draw and seen < self.rows_per_epoch:
            return
        self._next_draw = now + 0.2
        speed = seen / max(now - self._epoch_started, 1e-9)
        self._progress.update(
            self._task, completed=seen, loss=f"{float(running_loss) / seen:.4f}", speed=f"{speed:,.0f}"
        )

    def end_epoch(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        metric = "  ".join(f"{key} {record[key]:.4f}" for key in distinct_metrics(record)[:3])
        if self._progress is not None:
            self._progress.update(self._task, metric=metric, loss=f"{record['train_loss']:.4f}")
            return
        now = time.perf_counter()
        if record["epoch"] not in (1, self.epochs) and now < self._next_line:
            return  # without a terminal, print about one line a second
        self._next_line = now + 1.0
        print(
            f"epoch {record['epoch']}/{self.epochs}  loss {record['train_loss']:.4f}  {metric}  "
            f"{record['samples_per_second']:,.0f} samples/s",
            file=sys.stderr,
        )
