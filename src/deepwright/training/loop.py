"""What the epoch loop (`trainer.fit`) and the step loop (`lm.train_language_model`) share: the forward pass's
precision, the optimizer step, the checkpoint (`save_state`, at the end of a round or every
`trainer.checkpoint_every` steps inside one) and the end of a round (an epoch, or the steps between two
estimates), which records it in the history, on the progress display, in log.jsonl and in the checkpoint;
`resume_state` reads the last two back.

Whatever changes how a step is taken or a round is saved (several devices, exact resume) changes it here, once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from deepwright.errors import ConfigError, DeepwrightWarning
from deepwright.training.checkpoint import CheckpointFolder, write_atomically
from deepwright.training.rng import world
from deepwright.training.state import TrainState

__all__ = ["OptimizerStep", "autocast", "check_finite", "end_round", "read_log", "resume_state", "save_state"]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context that runs a forward pass at `precision`: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class OptimizerStep:
    """The optimizer steps of `state`, each over the gradients of `accumulation` backward passes: clip the gradient
    norm to `gradient_clip` (when given), step the optimizer and a per-step schedule, zero the gradients and count
    the step in `state.step`. (A plateau schedule steps on its metric once an epoch, in `fit`.)"""

    def __init__(self, state: TrainState, *, accumulation: int, gradient_clip: float | None) -> None:
        self.state = state
        self.accumulation = accumulation
        self.gradient_clip = gradient_clip
        plateau = isinstance(state.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.per_step_schedule = state.schedule is not None and not plateau

    def backward(self, loss: torch.Tensor, *, step: bool) -> None:
        """Add the gradients of one batch's mean `loss` (divided by `accumulation`); then, when `step`, take the
        optimizer step over the gradients summed since the last one."""
        (loss / self.accumulation if self.accumulation > 1 else loss).backward()
        if not step:
            return
        state = self.state
        if self.gradient_clip is not None:
            nn.utils.clip_grad_norm_(state.model.parameters(), self.gradient_clip)
        state.optimizer.step()
        if self.per_step_schedule:
            state.schedule.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.step += 1


def save_state(state: TrainState, checkpoints: CheckpointFolder | None) -> None:
    """Save `state` as the newest checkpoint in `checkpoints` (when given), written by rank 0 alone; in a
    distributed run every rank must call it (the checkpoint gathers every rank's generators)."""
    if checkpoints is None:
        return
    payload = state.checkpoint()
    if world()[0] == 0:
        checkpoints.save(payload)


def end_round(
    state: TrainState,
    record: dict[str, float],
    *,
    report: Callable[[dict[str, float]], None] | None,
    log_path: Path | None,
    checkpoints: CheckpointFolder | None,
) -> None:
    """Close a round with its `record`: add it to `state.history`, mark the round done, and on rank 0 show it
    with `report` and append it to the log at `log_path` as one JSON line (on disk before the checkpoint that
    follows, so that no checkpoint is ever newer than the log); then save the checkpoint (`save_state`). A round
    whose loss or weights are not finite stops the run first (`check_finite`): nothing of it is saved."""
    check_finite(state, record)
    state.history.append(record)
    state.end_round()
    if world()[0] == 0:
        if report is not None:
            report(record)
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
                if checkpoints is not None:  # on disk before the checkpoint that follows
                    log.flush()
                    os.fsync(log.fileno())
    save_state(state, checkpoints)


def check_finite(state: TrainState, record: dict[str, float]) -> None:
    """A `ConfigError` naming the round and its steps when a loss in `record` or a weight of the model is inf or
    NaN: training diverged, and every later step and the saved model would be NaN too."""
    bad = {key: value for key, value in record.items() if key.endswith("loss") and not math.isfinite(value)}
    weights = [  # an FSDP parameter (a DTensor) is checked on this rank's shard
        (parameter.to_local() if hasattr(parameter, "to_local") else parameter).detach().isfinite().all()
        for parameter in state.model.parameters()
    ]
    if not bad and (not weights or bool(torch.stack(weights).all())):
        return
    what = ", ".join(f"{key} is {value}" for key, value in list(bad.items())[:2]) or "the weights hold inf or NaN"
    first = state.history[-1]["step"] + 1 if state.history else 1
    raise ConfigError(
        f"training diverged in epoch {record.get('epoch')} (steps {first}-{state.step}): {what}. Likely causes: a "
        f"learning rate too large (lr {record.get('lr')}), inputs with huge values, or fp16/bf16 overflow; lower "
        "trainer.optimizer.lr, set trainer.gradient_clip or use fp32. Nothing of this round was saved"
    )


def resume_state(state: TrainState, checkpoint_path: Path, log_path: Path) -> None:
    """Continue `state` from the newest readable checkpoint of the folder whose `last.pt` is `checkpoint_path`
    (see `CheckpointFolder.load`) and the records logged at `log_path`. Records logged after that checkpoint (and
    a last line torn by a kill) are dropped from the history and from the log: their rounds run again. A missing
    or unreadable checkpoint is a `DataError`; a missing log holds no records. Resuming with another number of
    processes than the checkpoint's is a `DeepwrightWarning`: the run continues, in another data order."""
    checkpoint = CheckpointFolder(checkpoint_path).load()
    rank, now = world()
    saved = checkpoint.get("world_size", 1)
    if saved != now and rank == 0:
        warnings.warn(
            DeepwrightWarning(
                f"the checkpoint at step {checkpoint['step']} was taken with {saved} process(es), and the run "
                f"resumes with {now}: it continues from there, but each process now reads other rows, so the "
                "data order (and the result) differs from an uninterrupted run's"
            ),
            stacklevel=2,
        )
    state.restore(checkpoint, read_log(log_path))
    if rank == 0:
        text = "".join(json.dumps(record) + "\n" for record in state.history)
        write_atomically(log_path, lambda file: file.write(text.encode("utf-8")))


def read_log(log_path: Path) -> list[dict[str, float]]:
    """The records of a run's log.jsonl, up to a last line that a kill left torn (none without a log)."""
    records = []
    lines = log_path.read_text(encoding="utf-8").splitlines() if log_path.is_file() else []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records
