"""The loop tail both training loops share: the optimizer step over accumulated gradients, and resuming from
what the end of a round wrote."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from deepwright.config import OptimizerConfig
from deepwright.training.loop import OptimizerStep, resume_state
from deepwright.training.optim import build_optimizer
from deepwright.training.state import TrainState
from tests.training.test_trainer import toy_table, train, weights


def toy_state(seed: int = 0) -> TrainState:
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    optimizer = build_optimizer(model, OptimizerConfig(type="sgd", lr=0.1))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    return TrainState(model=model, optimizer=optimizer, schedule=schedule, generator=torch.Generator())


def test_one_step_over_accumulated_halves_equals_one_step_over_the_whole_batch() -> None:
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    whole, halves = toy_state(), toy_state()
    OptimizerStep(whole, accumulation=1, gradient_clip=None).backward(
        nn.functional.mse_loss(whole.model(x), y), step=True
    )
    optimizer_step = OptimizerStep(halves, accumulation=2, gradient_clip=None)
    for index, rows in enumerate((slice(0, 4), slice(4, 8))):
        optimizer_step.backward(nn.functional.mse_loss(halves.model(x[rows]), y[rows]), step=index == 1)
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(halves.model.state_dict()[name], tensor)
    assert whole.step == halves.step == 1
    assert halves.optimizer.param_groups[0]["lr"] == 0.05  # the per-step schedule stepped once
    assert all(parameter.grad is None for parameter in halves.model.parameters())


def test_no_step_before_the_last_batch_of_an_accumulation() -> None:
    state = toy_state()
    before = weights(state.model)
    OptimizerStep(state, accumulation=2, gradient_clip=None).backward(
        nn.functional.mse_loss(state.model(torch.randn(4, 4)), torch.randn(4, 1)), step=False
    )
    assert state.step == 0
    assert all(torch.equal(weights(state.model)[name], tensor) for name, tensor in before.items())
    assert all(parameter.grad is not None for parameter in state.model.parameters())


def test_resume_state_drops_the_rounds_logged_after_the_checkpoint(tmp_path: Path) -> None:
    log_path, checkpoint_path = tmp_path / "log.jsonl", tmp_path / "last.pt"
    trained = train({"epochs": 2, "batch_size": 16}, log_path=log_path, checkpoint_path=checkpoint_path)
    kept = log_path.read_text().splitlines()
    with open(log_path, "a", encoding="utf-8") as log:  # an epoch that ended after the last checkpoint
        log.write(json.dumps({**json.loads(kept[-1]), "epoch": 3, "step": trained.step + 4}) + "\n")

    state = train({"epochs": 1, "batch_size": 16})  # another model, to be overwritten
    resume_state(state, checkpoint_path, log_path)
    assert (state.epoch, state.step) == (2, trained.step)
    assert state.history == trained.history
    assert log_path.read_text().splitlines() == kept
    assert all(torch.equal(weights(state.model)[name], tensor) for name, tensor in weights(trained.model).items())


def test_resume_state_without_a_log_starts_an_empty_history(tmp_path: Path) -> None:
    checkpoint_path = tmp_path / "last.pt"
    train({"epochs": 1, "batch_size": 16}, checkpoint_path=checkpoint_path)
    state = train({"epochs": 1, "batch_size": 16}, train_table=toy_table(64, seed=2))
    resume_state(state, checkpoint_path, tmp_path / "log.jsonl")
    assert state.epoch == 1 and state.history == []
    assert (tmp_path / "log.jsonl").read_text() == ""
