"""The language-model training loop: optimizer steps over random blocks of a token stream, as nanoGPT trains.

Each step draws `batch_size` windows of `block_size + 1` tokens at random offsets (the state's seeded generator),
predicts every next token, and steps AdamW with warm-up and cosine decay and gradient clipping. Every `eval_every`
steps it estimates the validation loss and perplexity on the same random validation blocks, logs one JSON line,
and saves a checkpoint (and every `checkpoint_every` steps between). The state is the epoch loop's `TrainState`,
and the optimizer step, the checkpoint and the end of a round are `loop`'s, as in the epoch loop, so a checkpoint
resumes exactly, inside a round too; `epoch` counts the estimates made.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from deepwright.compute import ModelFlops
from deepwright.config import LanguageModelTrainerConfig, ScheduleConfig
from deepwright.evaluation.language import perplexity
from deepwright.training.checkpoint import CheckpointFolder
from deepwright.training.distributed import Distributed
from deepwright.training.loop import OptimizerStep, autocast, end_round, save_state
from deepwright.training.optim import build_optimizer, build_schedule
from deepwright.training.progress import print_step_record
from deepwright.training.state import TrainState

__all__ = [
    "bf16_is_fast",
    "block_windows",
    "create_language_model_state",
    "estimate_loss",
    "sample_blocks",
    "train_language_model",
]


def create_language_model_state(model: nn.Module, options: LanguageModelTrainerConfig) -> TrainState:
    """A fresh state: the optimizer (fused; weight decay on matrices only), the per-step schedule over
    `max_steps`, and the seeded generator that draws the training blocks. Build it after moving the model to its
    device."""
    optimizer = build_optimizer(model, options.optimizer, fused=True)
    schedule_options = ScheduleConfig(**options.schedule.model_dump())
    schedule = build_schedule(optimizer, schedule_options, options.max_steps, options.eval_every)
    generator = torch.Generator().manual_seed(options.seed)
    return TrainState(model=model, optimizer=optimizer, schedule=schedule, generator=generator)


def block_windows(ids: torch.Tensor, block_size: int) -> torch.Tensor:
    """Every window of `block_size + 1` consecutive tokens of `ids` (fewer when `ids` is shorter), as a view
    (N, length): inputs are a window's first `length - 1` tokens, targets its last `length - 1`.

    >>> block_windows(torch.arange(5), 2).tolist()
    [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    """
    length = min(block_size, len(ids) - 1) + 1
    return ids.unfold(0, length, 1)


def sample_blocks(windows: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """`batch_size` windows drawn at random (with replacement), (B, length)."""
    index = torch.randint(windows.shape[0], (batch_size,), generator=generator)
    return windows[index]


def _next_token_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting each token of `batch` (B, T + 1) from the ones before it."""
    logits = model(batch[:, :-1])  # (B, T, V)
    return functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


def train_language_model(
    state: TrainState,
    train_ids: torch.Tensor,
    validation_ids: torch.Tensor | None,
    *,
    options: LanguageModelTrainerConfig,
    block_size: int,
    progress: bool = True,
    log_path: Path | None = None,
    checkpoint_path: Path | None = None,
    distributed: Distributed | None = None,
    flops: ModelFlops | None = None,
) -> TrainState:
    """Train `state.model` from `state.step` to `options.max_steps` and return the state (see the module
    docstring). `train_ids` and `validation_ids` are 1-D token tensors on the model's device.

    With `distributed` ranks, every rank draws the same global batch of blocks and trains on its share of it
    (`options.strategy`: DDP or FSDP2); the logged losses are the ranks' mean. With `flops` (the training FLOPs per
    token and the machine's peak), each record also holds its `mfu`."""
    model = state.model
    device = next(model.parameters()).device
    distributed = distributed or Distributed()
    wrapped = distributed.wrap(model, options.strategy)
    forward = torch.compile(wrapped) if options.compile else wrapped
    mixed_precision = autocast(options.precision, device)
    if progress and options.precision == "bf16" and not bf16_is_fast(device):
        print(
            "note: oneDNN has no bfloat16 kernels for this CPU (they need AVX-512); bf16 autocast runs many times "
            "slower than fp32 here",
            file=sys.stderr,
        )
    train_windows = block_windows(train_ids, block_size)
    validation_windows = block_windows(validation_ids, block_size) if validation_ids is not None else None
    tokens_per_step = options.batch_size * options.gradient_accumulation * (train_windows.shape[1] - 1)
    accumulation = options.gradient_accumulation
    optimizer_step = OptimizerStep(state, accumulation=accumulation, gradient_clip=options.gradient_clip)
    report = functools.partial(print_step_record, max_steps=options.max_steps) if progress else None
    checkpoints = CheckpointFolder(checkpoint_path, options.keep_checkpoints) if checkpoint_path else None
    every = options.checkpoint_every
    cpu_seconds = 0.0  # this process's, in the round (after a resume, in the part since)
    state.start_round(device)  # or continue the round a checkpoint stopped in
    while state.step < options.max_steps:
        started, cpu_started = time.perf_counter(), time.process_time()
        model.train()
        for micro_batch in range(accumulation):
            batch = distributed.shard(sample_blocks(train_windows, options.batch_size, state.generator))
            batch = batch.to(device, non_blocking=True)
            with mixed_precision:
                loss = _next_token_loss(forward, batch)
            optimizer_step.backward(loss, step=micro_batch == accumulation - 1)
            state.round_loss += loss.detach()
        state.round_batches += accumulation
        state.round_seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu_started
        if state.step % options.eval_every and state.step != options.max_steps:
            if every is not None and state.step % every == 0:
                save_state(state, checkpoints)  # (an estimate's step saves its own)
            continue
        state.epoch += 1
        running_loss = distributed.all_reduce_sum(state.round_loss.clone()) / distributed.world_size
        steps, seconds = state.round_batches // accumulation, state.round_seconds
        record = {
            "step": state.step,
            "epoch": state.epoch,
            "train_loss": float(running_loss) / state.round_batches,
            "lr": state.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 4),
            "cpu_seconds": round(cpu_seconds, 4),  # all threads; beside `seconds`, what a busy machine took away
            "tokens_per_second": round(steps * tokens_per_step / max(seconds, 1e-9), 1),
        }
        if flops is not None:  # model-FLOPs utilisation of every rank's device together
            record["mfu"] = flops.utilisation(record["tokens_per_second"] / distributed.world_size)
        if validation_windows is not None:
            validation_loss = estimate_loss(
                forward,
                validation_windows,
                options.eval_batches,
                options.batch_size,
                options.seed,
                mixed_precision,
                distributed=distributed,
            )
            record.update({"val_loss": validation_loss, "val_perplexity": perplexity(validation_loss)})
        end_round(state, record, report=report, log_path=log_path, checkpoints=checkpoints)
        state.start_round(device)
        cpu_seconds = 0.0
    return state


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    windows: torch.Tensor,
    batches: int,
    batch_size: int,
    seed: int,
    mixed_precision: object,
    *,
    distributed: Distributed | None = None,
) -> float:
    """The mean loss over `batches` random batches of `windows`, drawn with `seed` (the same blocks each time),
    in evaluation mode (the model is left in evaluation mode). With `distributed` ranks each one measures its
    share of every batch and the mean is taken over all of them."""
    distributed = distributed or Distributed()
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = windows.device
    total = torch.zeros((), device=device)
    for _ in range(batches):
        with mixed_precision:
            total += _next_token_loss(model, distributed.shard(sample_blocks(windows, batch_size, generator)))
    return float(distributed.all_reduce_sum(total)) / (batches * distributed.world_size)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 matmuls have fast kernels on `device`: any CUDA device, or a CPU for which oneDNN has
    bfloat16 kernels (AVX-512 and up; on an AVX2-only CPU a bf16 matmul is many times slower than fp32)."""
    if device.type != "cpu":
        return True
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
