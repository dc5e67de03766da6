"""The training loops' options: the optimizer, the learning-rate schedule, early stopping, and the epoch
loop of tables and forecasts beside the step loop of language models, on one shared base."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from deepwright.config.base import Strict


class OptimizerConfig(Strict):
    """The optimizer and its learning rate."""

    type: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="sgd only")
    nesterov: bool = Field(default=False, description="sgd only")
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="adam and adamw only")


class ScheduleConfig(Strict):
    """The learning-rate schedule: constant, step, cosine or linear decay (stepped per optimizer step, after an
    optional linear warm-up), or plateau (multiplied by gamma when the validation metric stalls, checked once
    per epoch)."""

    type: Literal["constant", "step", "cosine", "linear", "plateau"] = "constant"
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1, description="linear warm-up over this share of steps")
    step_epochs: int = Field(default=10, gt=0, description="step: multiply by gamma every this many epochs")
    gamma: float = Field(default=0.1, gt=0, le=1, description="step and plateau: the factor applied to lr")
    min_lr_ratio: float = Field(
        default=0.0, ge=0, le=1, description="cosine, linear and plateau: lowest lr as a share of lr"
    )
    plateau_epochs: int = Field(
        default=3, gt=0, description="plateau: epochs without gain in the early-stopping metric (or val_loss)"
    )

    @model_validator(mode="after")
    def _plateau_has_no_warmup(self) -> ScheduleConfig:
        if self.type == "plateau" and self.warmup_fraction > 0:
            raise ValueError("the plateau schedule has no warm-up; set warmup_fraction to 0")
        return self


class EarlyStoppingConfig(Strict):
    """Stop when a validation metric stops improving, and restore the best weights."""

    metric: str = Field(
        default="val_loss", description="val_loss, or val_<metric> / val_<output>_<metric> (e.g. val_accuracy)"
    )
    patience: int = Field(default=5, ge=1, description="epochs without improvement before stopping")
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: float = Field(default=0.0, ge=0)


class TrainingLoopConfig(Strict):
    """The options both training loops share (the epoch loop of tables and forecasts, the step loop of language
    models): batches, the optimizer, gradient handling, precision, seed, device, threads and checkpoints. The
    defaults are the epoch loop's; `LanguageModelTrainerConfig` sets its own where they differ."""

    batch_size: int = Field(default=32, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    gradient_clip: float | None = Field(default=None, gt=0, description="clip the gradient norm to this")
    gradient_accumulation: int = Field(default=1, ge=1, description="optimizer step every this many batches")
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: autocast matmuls to bfloat16")
    seed: int = 42
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(
        default=None, gt=0, description="CPU threads for torch; unset: 1 for a small model, else one per core"
    )
    checkpoint: bool = Field(default=True, description="save a checkpoint each epoch (needed for --resume)")
    checkpoint_every: int | None = Field(
        default=None,
        gt=0,
        description="also save a checkpoint every this many optimizer steps (unset: only at each epoch's end)",
    )
    keep_checkpoints: int = Field(
        default=2,
        ge=1,
        description="checkpoints kept: the newest and those before it, to fall back on if the newest is unreadable",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="recompute each transformer, recurrent or GPT block's activations in the backward pass "
        "instead of keeping them (less memory, about a third more compute; the same loss)",
    )


class TrainerConfig(TrainingLoopConfig):
    """The training loop's options."""

    epochs: int = Field(default=10, gt=0)
    eval_batch_size: int = Field(default=1024, gt=0)
    schedule: ScheduleConfig = ScheduleConfig()
    early_stopping: EarlyStoppingConfig | None = None


class LanguageModelOptimizerConfig(OptimizerConfig):
    """AdamW with nanoGPT's settings, unless the config says otherwise."""

    type: Literal["sgd", "adam", "adamw"] = "adamw"
    weight_decay: float = Field(default=0.1, ge=0, description="matrices only; biases, norms do not decay")
    betas: tuple[float, float] = (0.9, 0.99)


class LanguageModelScheduleConfig(Strict):
    """The learning rate per step: a linear warm-up, then constant or a cosine decay to min_lr_ratio · lr."""

    type: Literal["constant", "cosine"] = "cosine"
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1, description="linear warm-up over this share of steps")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="cosine: the last lr as a share of lr")


class LanguageModelTrainerConfig(TrainingLoopConfig):
    """The language model's training loop: steps over random blocks of the corpus."""

    max_steps: int = Field(default=2000, gt=0, description="optimizer steps")
    batch_size: int = Field(default=12, gt=0, description="blocks per step")
    eval_every: int = Field(default=250, gt=0, description="estimate the losses (and checkpoint) every this many steps")
    eval_batches: int = Field(default=20, gt=0, description="random batches each estimate averages")
    optimizer: LanguageModelOptimizerConfig = LanguageModelOptimizerConfig()
    schedule: LanguageModelScheduleConfig = LanguageModelScheduleConfig()
    gradient_clip: float | None = Field(default=1.0, gt=0, description="clip the gradient norm to this")
    gradient_accumulation: int = Field(default=1, ge=1, description="batches per optimizer step")
    compile: bool = Field(default=False, description="torch.compile the model (slow start, faster steps)")
    strategy: Literal["ddp", "fsdp"] = Field(
        default="ddp",
        description="with several processes: ddp copies the model to every rank and averages gradients; fsdp "
        "(FSDP2) shards parameters, gradients and optimizer state across the ranks",
    )
    checkpoint: bool = Field(default=True, description="save a checkpoint at each estimate (needed for --resume)")
    checkpoint_every: int | None = Field(
        default=None,
        gt=0,
        description="also save a checkpoint every this many optimizer steps (unset: only at each estimate)",
    )
