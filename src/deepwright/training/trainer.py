"""The epoch loop: one readable function over a `TrainState`, which is also exactly what is checkpointed.

`fit` knows tensors, a loss function and a validation function; it knows nothing of columns or files.
Mixed precision (bf16 autocast), gradient accumulation and gradient clipping are options of the same loop; the
optimizer step and the end of an epoch (log line, checkpoint) are `loop`'s, shared with the language model's
step loop.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from deepwright.compute import ModelFlops
from deepwright.config import TrainerConfig
from deepwright.data.batches import TensorTable, batch_bounds, iterate_batches, num_rows
from deepwright.errors import ConfigError
from deepwright.evaluation.metrics import lower_is_better
from deepwright.training.checkpoint import CheckpointFolder
from deepwright.training.distributed import Distributed
from deepwright.training.loop import OptimizerStep, autocast, end_round, save_state
from deepwright.training.optim import build_optimizer, build_schedule
from deepwright.training.progress import EpochProgress
from deepwright.training.state import TrainState

__all__ = ["TrainState", "autocast", "check_options", "create_state", "fit"]

LossFunction = Callable[[dict[str, torch.Tensor], TensorTable], torch.Tensor]
# (model, table) → flat metrics such as {"loss": 0.31, "accuracy": 0.9}; fit prefixes them with "val_".
ValidateFunction = Callable[[nn.Module, TensorTable], dict[str, float]]


def create_state(model: nn.Module, options: TrainerConfig, num_train_rows: int, *, world_size: int = 1) -> TrainState:
    """A fresh state: optimizer, per-step schedule over the planned steps, and a seeded shuffling generator.
    (`world_size` ranks share each batch; a last batch too small to give each one a row joins the one before.)"""
    batches_per_epoch = len(batch_bounds(num_train_rows, options.batch_size, smallest=max(2, world_size)))
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
    distributed: Distributed | None = None,
    flops: ModelFlops | None = None,
) -> TrainState:
    """Train `state.model` from `state.epoch` to `options.epochs` (or until early stopping); return the state.

    Each epoch: shuffle, step through batches, validate, log one JSON line, check early stopping, and save a
    checkpoint (in the folder of `checkpoint_path`, its `last.pt`; also every `options.checkpoint_every` optimizer
    steps inside an epoch, which a resumed run continues from its next batch). With early stopping the best
    epoch's weights are restored at the end.

    With `distributed` ranks, `options.batch_size` is the global batch: this rank trains on its shard of each one
    through `DistributedDataParallel`, each shard's loss weighted by its share of the batch (so that the averaged
    gradient is the whole batch's), and the logged training loss is summed over the ranks. With `flops` (the
    model's training FLOPs per sample and the machine's peak), each epoch's record also holds its `mfu`.
    """
    check_options(state, validation, options, validate)
    stopping = options.early_stopping
    plateau = isinstance(state.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau)
    model = state.model
    distributed = distributed or Distributed()
    forward = distributed.wrap(model)
    scales = distributed.loss_scales(num_rows(train), options.batch_size)
    watched, minimize = _minimize(options)
    device = next(model.parameters()).device
    mixed_precision = autocast(options.precision, device)
    reporter = EpochProgress(options.epochs, num_rows(train), enabled=progress)
    accumulation = options.gradient_accumulation
    optimizer_step = OptimizerStep(state, accumulation=accumulation, gradient_clip=options.gradient_clip)
    checkpoints = CheckpointFolder(checkpoint_path, options.keep_checkpoints) if checkpoint_path else None
    every = options.checkpoint_every
    with reporter:
        while state.epoch < options.epochs and not state.stopped_early:
            model.train()
            started = time.perf_counter()
            state.start_round(device)  # or continue the epoch a checkpoint stopped in, from its next batch
            state.start_epoch_order()
            reporter.start_epoch(state.epoch + 1)
            batches = iterate_batches(
                train,
                options.batch_size,
                generator=state.generator,
                device=device,
                skip=state.round_batches,
                shard=distributed.shard_of(),
            )
            for index, batch in enumerate(batches, start=state.round_batches):
                with mixed_precision:
                    loss = loss_fn(forward(batch), batch)
                rows = num_rows(batch)
                last = (index + 1) % accumulation == 0 or index + 1 == len(scales)
                optimizer_step.backward(loss if scales[index] == 1.0 else loss * scales[index], step=last)
                state.round_loss += loss.detach() * rows
                state.round_rows += rows
                state.round_batches = index + 1
                reporter.advance(state.round_loss, state.round_rows)
                if last and every is not None and state.step % every == 0 and index + 1 < len(scales):
                    state.round_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    save_state(state, checkpoints)  # the epoch's end saves its own just after
            running_loss, seen = state.round_loss, state.round_rows
            if distributed.enabled:
                running_loss = distributed.all_reduce_sum(running_loss.clone())  # the state keeps this rank's own
                seen = int(distributed.all_reduce_sum(torch.tensor(seen, device=device)))
            seconds = state.round_seconds + time.perf_counter() - started
            state.epoch += 1
            record = {
                "epoch": state.epoch,
                "step": state.step,
                "train_loss": float(running_loss) / max(1, seen),
                "lr": state.optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 4),
                "samples_per_second": round(seen / seconds, 1),
            }
            if flops is not None:  # model-FLOPs utilisation of every rank's device together
                record["mfu"] = flops.utilisation(seen / seconds / distributed.world_size)
            if validation:
                record.update({f"val_{name}": value for name, value in validate(model, validation).items()})
            if plateau:
                state.schedule.step(record[watched])
            if stopping is not None:
                _early_stopping_step(state, record[watched], minimize, stopping.min_delta, stopping.patience)
            end_round(state, record, report=reporter.end_epoch, log_path=log_path, checkpoints=checkpoints)
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
