"""The training loop on a toy problem: learning, early stopping, clipping, accumulation, precision, optimizers,
schedules, and reproducibility."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import TrainerConfig
from deepwright.errors import ConfigError
from deepwright.models.blocks import MLP, ScalarHead
from deepwright.training.checkpoint import load_checkpoint
from deepwright.training.optim import lr_factor
from deepwright.training.trainer import TrainState, create_state, fit


def toy_table(rows: int, seed: int, noise: float = 0.0) -> dict[str, torch.Tensor]:
    """A linearly separable binary problem in 4 dimensions (labels flipped with probability `noise`)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, generator=generator)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) > 0).float()
    flip = torch.rand(rows, generator=generator) < noise
    return {"x": x, "y": torch.where(flip, 1 - y, y)}


class ToyModel(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.body = MLP(4, [hidden])
        self.head = ScalarHead(hidden)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"y": self.head(self.body(batch["x"]))}


def loss_fn(logits: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits["y"].float(), batch["y"])


@torch.no_grad()
def validate(model: nn.Module, table: dict[str, torch.Tensor]) -> dict[str, float]:
    model.eval()
    logits = model(table)["y"]
    accuracy = ((logits > 0).float() == table["y"]).float().mean()
    return {"loss": float(loss_fn({"y": logits}, table)), "accuracy": float(accuracy)}


def train(
    options: dict[str, Any],
    *,
    rows: int = 64,
    validation: dict[str, torch.Tensor] | None = None,
    model_seed: int = 0,
    train_table: dict[str, torch.Tensor] | None = None,
    **kwargs: Any,
) -> TrainState:
    trainer = TrainerConfig(**options)
    torch.manual_seed(model_seed)
    model = ToyModel()
    table = train_table if train_table is not None else toy_table(rows, seed=1)
    state = create_state(model, trainer, rows)
    return fit(
        state,
        table,
        validation,
        options=trainer,
        loss_fn=loss_fn,
        validate=validate,
        progress=False,
        **kwargs,
    )


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def test_loss_decreases_on_a_learnable_problem() -> None:
    validation = toy_table(64, seed=2)
    state = train({"epochs": 15, "batch_size": 16, "optimizer": {"lr": 0.02}}, validation=validation)
    losses = [record["train_loss"] for record in state.history]
    assert len(losses) == 15
    assert losses[-1] < 0.5 * losses[0]
    assert state.history[-1]["val_accuracy"] >= 0.9
    assert state.epoch == 15
    assert state.step == 15 * 4


def test_history_records_and_log_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    state = train({"epochs": 3, "batch_size": 16}, validation=toy_table(16, seed=2), log_path=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == state.history
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for key in ("step", "train_loss", "lr", "seconds", "samples_per_second", "val_loss", "val_accuracy"):
        assert key in lines[0]


def test_checkpoint_holds_the_whole_state(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    state = train({"epochs": 2, "batch_size": 16}, checkpoint_path=path)
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 2
    assert checkpoint["step"] == state.step
    assert "history" not in checkpoint  # it grows each epoch; the run's log.jsonl holds it
    for name, tensor in state.model.state_dict().items():
        assert torch.equal(checkpoint["model"][name], tensor)
    # The last two (keep_checkpoints' default) by step, last.pt the newest; no temporary files left.
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt", "step-00000004.pt", "step-00000008.pt"]
    assert (path.parent / "step-00000008.pt").read_bytes() == path.read_bytes()


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    # Few noisy rows and a high learning rate: the model overfits and the validation loss turns up.
    train_table = toy_table(24, seed=3, noise=0.3)
    validation = toy_table(200, seed=4)
    seen: list[dict[str, torch.Tensor]] = []

    def remember(model: nn.Module, table: dict[str, torch.Tensor]) -> dict[str, float]:
        if len(table["y"]) == len(validation["y"]):
            seen.append(weights(model))
        return validate(model, table)

    options = TrainerConfig(
        epochs=200,
        batch_size=8,
        optimizer={"lr": 0.05},
        early_stopping={"metric": "val_loss", "patience": 3},
    )
    torch.manual_seed(0)
    model = ToyModel(hidden=64)
    state = create_state(model, options, 24)
    fit(state, train_table, validation, options=options, loss_fn=loss_fn, validate=remember, progress=False)

    assert state.stopped_early
    epochs = len(state.history)
    assert epochs < 200
    val_losses = [record["val_loss"] for record in state.history]
    best = min(range(epochs), key=val_losses.__getitem__)
    assert state.best_epoch == best + 1
    assert epochs == state.best_epoch + 3  # patience epochs without improvement
    assert state.best_score == val_losses[best]
    # The restored weights are the best epoch's: equal tensors, and re-evaluating gives its loss.
    restored = weights(state.model)
    for name, tensor in seen[best].items():
        assert torch.equal(restored[name], tensor)
    assert validate(state.model, validation)["loss"] == pytest.approx(val_losses[best], abs=1e-6)
    assert validate(state.model, validation)["loss"] < val_losses[-1]


def test_early_stopping_on_a_metric_that_grows() -> None:
    options = {"epochs": 30, "batch_size": 16, "early_stopping": {"metric": "val_accuracy", "patience": 2}}
    state = train(options, validation=toy_table(64, seed=2))
    accuracies = [record["val_accuracy"] for record in state.history]
    assert min(accuracies) < max(accuracies)
    assert state.best_score == max(accuracies)
    assert state.best_epoch == accuracies.index(max(accuracies)) + 1


def test_early_stopping_needs_validation_rows() -> None:
    with pytest.raises(ConfigError, match="validation rows"):
        train({"epochs": 2, "early_stopping": {}}, validation=None)


def test_early_stopping_metric_must_exist() -> None:
    with pytest.raises(ConfigError) as caught:
        train({"epochs": 2, "early_stopping": {"metric": "val_acc"}}, validation=toy_table(16, seed=2))
    assert "val_accuracy" in str(caught.value)  # the choices are listed


def test_gradient_clipping_bounds_every_update() -> None:
    sgd = {"type": "sgd", "lr": 1.0, "momentum": 0.0}
    torch.manual_seed(0)
    initial = weights(ToyModel())
    clipped = train({"epochs": 1, "batch_size": 16, "optimizer": sgd, "gradient_clip": 1e-4}).model
    free = train({"epochs": 1, "batch_size": 16, "optimizer": sgd}).model

    def distance(model: nn.Module) -> float:
        now = weights(model)
        return float(torch.sqrt(sum(((now[name] - initial[name]) ** 2).sum() for name in now)))

    assert distance(clipped) <= 4 * 1e-4 * 1.001  # four steps, each at most lr × clip long
    assert distance(free) > 100 * distance(clipped)


def test_gradient_accumulation_equals_a_larger_batch() -> None:
    sgd = {"type": "sgd", "lr": 0.1, "momentum": 0.0}
    accumulated = train({"epochs": 2, "batch_size": 8, "gradient_accumulation": 2, "optimizer": sgd})
    large = train({"epochs": 2, "batch_size": 16, "optimizer": sgd})
    assert accumulated.step == large.step == 8
    for name, tensor in weights(large.model).items():
        assert torch.allclose(weights(accumulated.model)[name], tensor, atol=1e-6), name


def test_gradient_accumulation_steps_on_a_short_last_group() -> None:
    state = train({"epochs": 1, "batch_size": 16, "gradient_accumulation": 3}, rows=64)
    assert state.step == 2  # batches 1-3, then the last batch alone


def test_bf16_autocasts_the_forward_pass() -> None:
    dtypes = []

    def spy(logits: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dtypes.append(logits["y"].dtype)
        return loss_fn(logits, batch)

    options = TrainerConfig(epochs=2, batch_size=16, precision="bf16", optimizer={"lr": 0.02})
    torch.manual_seed(0)
    state = create_state(ToyModel(), options, 64)
    fit(state, toy_table(64, seed=1), None, options=options, loss_fn=spy, validate=validate, progress=False)
    assert set(dtypes) == {torch.bfloat16}
    assert all(parameter.dtype == torch.float32 for parameter in state.model.parameters())
    losses = [record["train_loss"] for record in state.history]
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize(
    ("optimizer", "expected_class"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_every_optimizer_learns(optimizer: str, expected_class: type) -> None:
    lr = 0.2 if optimizer == "sgd" else 0.02
    state = train({"epochs": 8, "batch_size": 16, "optimizer": {"type": optimizer, "lr": lr, "weight_decay": 0.01}})
    assert type(state.optimizer) is expected_class
    losses = [record["train_loss"] for record in state.history]
    assert losses[-1] < 0.7 * losses[0]


def test_weight_decay_spares_biases_and_norms() -> None:
    from deepwright.config import OptimizerConfig
    from deepwright.training.optim import build_optimizer

    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    optimizer = build_optimizer(model, OptimizerConfig(type="adamw", weight_decay=0.1))
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1
    assert spared["weight_decay"] == 0.0
    assert all(parameter.dim() == 2 for parameter in decayed["params"])
    assert len(spared["params"]) == 4  # two biases, the norm's weight and bias


@pytest.mark.parametrize(
    "schedule",
    [
        {"type": "constant"},
        {"type": "step", "step_epochs": 2, "gamma": 0.5},
        {"type": "cosine", "min_lr_ratio": 0.1},
        {"type": "constant", "warmup_fraction": 0.5},
        {"type": "cosine", "warmup_fraction": 0.25},
    ],
)
def test_every_schedule_runs_and_sets_the_rate(schedule: dict) -> None:
    options = {"epochs": 6, "batch_size": 16, "optimizer": {"lr": 0.01}, "schedule": schedule}
    state = train(options)
    trainer = TrainerConfig(**options)
    # Each record's rate is the one set after that epoch's last step (4 steps an epoch, 24 in all).
    expected = [0.01 * lr_factor(4 * epoch, trainer.schedule, 24, 4) for epoch in range(1, 7)]
    actual = [record["lr"] for record in state.history]
    assert actual == pytest.approx(expected)
    if schedule["type"] == "constant" and not schedule.get("warmup_fraction"):
        assert state.schedule is None
        assert actual == [0.01] * 6


@pytest.mark.parametrize(
    ("rows", "accumulation"),
    [(64, 3), (65, 1)],  # 4 batches in groups of 3 → 2 steps; 65 rows → 4 batches (the last row joins)
    ids=["accumulation-remainder", "merged-last-row"],
)
def test_cosine_schedule_ends_at_the_last_step(rows: int, accumulation: int) -> None:
    options = {
        "epochs": 3,
        "batch_size": 16,
        "gradient_accumulation": accumulation,
        "optimizer": {"lr": 0.01},
        "schedule": {"type": "cosine"},
    }
    state = train(options, rows=rows, train_table=toy_table(rows, seed=1))
    rates = [record["lr"] for record in state.history]
    assert rates[-2] > 0  # still learning before the last epoch
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)  # and the cosine reaches its floor at the very end


def test_lr_factor_shapes() -> None:
    from deepwright.config import ScheduleConfig

    step = ScheduleConfig(type="step", step_epochs=2, gamma=0.1)
    assert [lr_factor(s, step, 100, 10) for s in (0, 19, 20, 40)] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    cosine = ScheduleConfig(type="cosine", min_lr_ratio=0.2)
    assert lr_factor(0, cosine, 100, 10) == pytest.approx(1.0)
    assert lr_factor(99, cosine, 100, 10) == pytest.approx(0.2)
    warm = ScheduleConfig(type="constant", warmup_fraction=0.1)
    assert [lr_factor(s, warm, 100, 10) for s in (0, 4, 9, 10, 50)] == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0])


def test_same_seed_same_weights_different_seed_different() -> None:
    options = {"epochs": 3, "batch_size": 16, "seed": 5}
    first, second = train(options).model, train(options).model
    other = train({**options, "seed": 6}).model  # only the shuffling seed differs
    for name, tensor in weights(first).items():
        assert torch.equal(weights(second)[name], tensor)
    assert any(not torch.equal(weights(other)[name], tensor) for name, tensor in weights(first).items())
