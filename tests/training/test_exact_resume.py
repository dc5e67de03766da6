"""Resuming inside an epoch: a run stopped right after any checkpoint (`trainer.checkpoint_every`) and resumed
into a fresh state ends with the uninterrupted run's weights bit for bit, and the same log but for the timings;
with dropout, gradient accumulation over an odd number of batches, early stopping and a plateau schedule."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from deepwright.config import TrainerConfig
from deepwright.errors import DeepwrightWarning
from deepwright.models.blocks import MLP, ScalarHead
from deepwright.training.checkpoint import CheckpointFolder, load_checkpoint, save_checkpoint
from deepwright.training.loop import resume_state
from deepwright.training.trainer import TrainState, create_state, fit
from tests.training.test_trainer import loss_fn, toy_table, validate

TIMINGS = {"seconds", "samples_per_second", "mfu"}


class DropoutModel(nn.Module):
    """The toy model with dropout, so that the run draws from torch's global generator too."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(MLP(4, [16]), nn.Dropout(0.3))
        self.head = ScalarHead(16)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"y": self.head(self.body(batch["x"]))}


def new_state(options: TrainerConfig, rows: int, model_seed: int = 0) -> TrainState:
    torch.manual_seed(model_seed)
    return create_state(DropoutModel(), options, rows)


def run(state: TrainState, options: TrainerConfig, tmp: Path) -> TrainState:
    return fit(
        state,
        toy_table(70, seed=1),
        toy_table(40, seed=2, noise=0.2),
        options=options,
        loss_fn=loss_fn,
        validate=validate,
        log_path=tmp / "log.jsonl",
        checkpoint_path=tmp / "checkpoints" / "last.pt",
        progress=False,
    )


def stop_after_save(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    """Make the `saves`-th checkpoint the last thing the run does, as a kill right after it would."""
    original, done = CheckpointFolder.save, []

    def save_then_stop(folder: CheckpointFolder, payload: dict) -> None:
        original(folder, payload)
        done.append(payload["step"])
        if len(done) == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointFolder, "save", save_then_stop)


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [{key: value for key, value in json.loads(line).items() if key not in TIMINGS} for line in lines]


@pytest.mark.parametrize(
    ("trainer", "saves"),
    [
        ({"checkpoint_every": 1}, 3),
        ({"checkpoint_every": 2, "gradient_accumulation": 3}, 3),
        ({"checkpoint_every": 1, "early_stopping": {"patience": 2}, "optimizer": {"lr": 0.05}}, 12),
        ({"checkpoint_every": 3, "schedule": {"type": "plateau", "plateau_epochs": 1}}, 7),
        ({"checkpoint_every": 1, "optimizer": {"type": "sgd", "lr": 0.1}, "schedule": {"type": "cosine"}}, 11),
    ],
    ids=["every-step", "accumulation", "early-stopping", "plateau", "sgd-cosine"],
)
def test_resuming_inside_an_epoch_ends_where_the_uninterrupted_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainer: dict, saves: int
) -> None:
    options = TrainerConfig(epochs=4, batch_size=8, **trainer)  # 70 rows: 9 batches an epoch, the last of 6
    whole = run(new_state(options, 70), options, tmp_path / "whole")

    stop_after_save(monkeypatch, saves)
    with pytest.raises(KeyboardInterrupt):
        run(new_state(options, 70), options, tmp_path / "cut")
    monkeypatch.undo()
    checkpoint = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert checkpoint["round_batches"] > 0  # stopped inside an epoch
    state = new_state(options, 70, model_seed=1)  # other weights, to be overwritten
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same world size: no warning
        resume_state(state, tmp_path / "cut" / "checkpoints" / "last.pt", tmp_path / "cut" / "log.jsonl")
    assert state.round_batches == checkpoint["round_batches"]
    resumed = run(state, options, tmp_path / "cut")

    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    assert records(tmp_path / "cut" / "log.jsonl") == records(tmp_path / "whole" / "log.jsonl")
    assert (resumed.step, resumed.epoch, resumed.stopped_early) == (whole.step, whole.epoch, whole.stopped_early)


def test_the_checkpoints_inside_an_epoch_hold_its_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = TrainerConfig(epochs=2, batch_size=8, checkpoint_every=2, gradient_accumulation=2)
    stop_after_save(monkeypatch, 3)  # steps 2, 4 of epoch 1 (5 steps: 9 batches by 2), then step 5: its end
    with pytest.raises(KeyboardInterrupt):
        run(new_state(options, 70), options, tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert (checkpoint["step"], checkpoint["epoch"], checkpoint["round_batches"]) == (5, 1, 0)
    previous = load_checkpoint(tmp_path / "checkpoints" / "step-00000004.pt")
    assert (previous["step"], previous["epoch"], previous["round_batches"]) == (4, 0, 8)
    assert previous["world_size"] == 1 and len(previous["ranks"]) == 1 and previous["ranks"][0]["round_rows"] == 64
    assert previous["ranks"][0]["round_loss"].shape == () and previous["round_start_generator"].dtype == torch.uint8
    assert set(previous["ranks"][0]["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert not (tmp_path / "checkpoints" / "step-00000002.pt").exists()  # keep_checkpoints: 2


def test_resuming_with_another_world_size_warns_that_the_data_order_changes(tmp_path: Path) -> None:
    options = TrainerConfig(epochs=1, batch_size=8)
    trained = run(new_state(options, 70), options, tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(last, {**load_checkpoint(last), "world_size": 2})
    state = new_state(options, 70, model_seed=1)
    with pytest.warns(DeepwrightWarning, match=r"taken with 2 process\(es\).*resumes with 1.*data order"):
        resume_state(state, last, tmp_path / "log.jsonl")
    assert state.step == trained.step  # it resumes all the same
    for name, tensor in trained.model.state_dict().items():
        assert torch.equal(state.model.state_dict()[name], tensor), name


def test_a_log_line_torn_by_a_kill_is_dropped_on_resume(tmp_path: Path) -> None:
    options = TrainerConfig(epochs=2, batch_size=8)
    trained = run(new_state(options, 70), options, tmp_path)
    log = tmp_path / "log.jsonl"
    whole = log.read_text()
    with open(log, "a", encoding="utf-8") as file:
        file.write('{"epoch": 3, "step": 2')
    state = new_state(options, 70, model_seed=1)
    resume_state(state, tmp_path / "checkpoints" / "last.pt", log)
    assert state.history == trained.history
    assert log.read_text() == whole


def test_a_checkpoint_from_before_exact_resume_still_resumes_at_its_epoch(tmp_path: Path) -> None:
    options = TrainerConfig(epochs=2, batch_size=8)
    trained = run(new_state(options, 70), options, tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    new_keys = {"ranks", "world_size", "round_batches", "round_seconds", "round_start_generator"}
    old = {key: value for key, value in load_checkpoint(last).items() if key not in new_keys}
    save_checkpoint(last, old)  # what a checkpoint held before: torch's generator alone (torch_rng), no position
    state = new_state(options, 70, model_seed=1)
    resume_state(state, last, tmp_path / "log.jsonl")
    assert (state.epoch, state.step, state.round_batches) == (trained.epoch, trained.step, 0)
    assert torch.equal(state.generator.get_state(), trained.generator.get_state())
