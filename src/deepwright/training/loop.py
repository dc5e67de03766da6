"""What the epoch loop (`trainer.fit`) and the step loop (`lm.train_language_model`) share: the forward pass's
precision, the optimizer step, and the end of a round (an epoch, or the steps between two estimates), which records
it in the history, on the progress display, in log.jsonl and in the checkpoint; `resume_state` reads the last two
back.

Whatever changes how a step is taken or a round is saved (several devices, exact resume) changes it here, once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from deepwright.training.checkpoint import load_checkpoint, save_checkpoint
from deepwright.training.state import TrainState

__all__ = ["OptimizerStep", "autocast", "end_round", "resume_state"]


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


def end_round(
    state: TrainState,
    record: dict[str, float],
    *,
    report: Callable[[dict[str, float]], None] | None,
    log_path: Path | None,
    checkpoint_path: Path | None,
) -> None:
    """Close a round with its `record`: add it to `state.history`, show it with `report`, append it to the log at
    `log_path` as one JSON line, and save `state`'s checkpoint at `checkpoint_path` (each when given)."""
    state.history.append(record)
    if report is not None:
        report(record)
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    if checkpoint_path is not None:
        save_checkpoint(checkpoint_path, state.checkpoint())


def resume_state(state: TrainState, checkpoint_path: Path, log_path: Path) -> None:
    """Continue `state` from the checkpoint that `end_round` saved at `checkpoint_path` and the records it logged at
    `log_path`. Records logged after that checkpoint are dropped from the history and from the log: their rounds
    run again. A missing or unreadable checkpoint is a `DataError`; a missing log holds no records."""
    checkpoint = load_checkpoint(checkpoint_path)
    lines = log_path.read_text(encoding="utf-8").splitlines() if log_path.is_file() else []
    state.restore(checkpoint, [json.loads(line) for line in lines if line.strip()])
    log_path.write_text("".join(json.dumps(record) + "\n" for record in state.history), encoding="utf-8")
