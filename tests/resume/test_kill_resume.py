"""`kill -9` at a random optimizer step inside an epoch (or between two estimates), then `deepwright train --resume`:
the bundle's weights equal an uninterrupted run's bit for bit, and so does its log apart from the timings; for a
table, a forecast and a language model, each in real `python -m deepwright` subprocesses.

The run checkpoints every few steps (`trainer.checkpoint_every`); the test waits for a step file past a randomly
drawn step to appear, waits a random few milliseconds more (so the kill lands anywhere: in a forward pass, in an
optimizer step, half-way through writing the next checkpoint), and sends SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import deepwright as dp
from tests.helpers import make_config, make_frame, run_cli

SHAKESPEARE = Path(__file__).parents[1] / "fixtures" / "text" / "shakespeare.txt"
TIMINGS = {"seconds", "cpu_seconds", "samples_per_second", "tokens_per_second", "mfu"}
CHECKPOINT_EVERY = 2

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def table_case(project: Path) -> tuple[dict, Path, int]:
    """A table with dropout and batch norm (so the global RNG matters) and gradient accumulation over an odd
    number of batches: 294 training rows, batches of 8 (37 per epoch, the last a short one), 2 per step."""
    data = project / "people.csv"
    make_frame(420, seed=3).to_csv(data, index=False)
    config = make_config(epochs=3, batch_size=8, gradient_accumulation=2, checkpoint_every=CHECKPOINT_EVERY)
    config["combiner"] = {"dims": [32], "dropout": 0.3, "norm": "batch"}
    config["input_features"][1]["encoder"] = {"type": "embedding", "dropout": 0.2}
    return config, data, 3 * 19


def forecast_case(project: Path) -> tuple[dict, Path, int]:
    """A monthly series, windows of 12 months forecasting 2, a GRU encoder with dropout after it."""
    months = 300
    rng = np.random.default_rng(0)
    t = np.arange(months)
    frame = pd.DataFrame(
        {
            "month": pd.period_range("1990-01", periods=months, freq="M").strftime("%Y-%m"),
            "sales": (100 + t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, months)).round(2),
            "promo": rng.choice(["yes", "no"], months),
            "price": rng.normal(10, 1, months).round(2),
        }
    )
    data = project / "sales.csv"
    frame.to_csv(data, index=False)
    config = {
        "model_type": "forecast",
        "time_column": "month",
        "lookback": 12,
        "horizon": 2,
        "input_features": [{"name": "promo", "type": "binary"}, {"name": "price", "type": "number"}],
        "output_features": [{"name": "sales", "type": "number"}],
        "encoder": {"type": "rnn", "cell": "gru", "dim": 8},
        "combiner": {"dims": [16], "dropout": 0.2},
        "preprocessing": {"split": {"fractions": [0.7, 0.15, 0.15]}},
        "trainer": {"epochs": 4, "batch_size": 4, "optimizer": {"lr": 0.01}, "checkpoint_every": CHECKPOINT_EVERY},
    }
    return config, data, 4 * 49


def language_case(project: Path) -> tuple[dict, Path, int]:
    """A character GPT with dropout: 150 steps, an estimate every 50."""
    config = {
        "model_type": "lm",
        "model": {"layers": 2, "heads": 2, "dim": 16, "block_size": 16, "dropout": 0.1},
        "trainer": {
            "max_steps": 150,
            "eval_every": 50,
            "eval_batches": 2,
            "batch_size": 4,
            "checkpoint_every": CHECKPOINT_EVERY,
        },
    }
    return config, SHAKESPEARE, 150


# About 20 s of CPU each (two CLI start-ups, a few seconds of training); the forecast, the epoch loop again with
# another model, runs with -m slow.
CASES = {
    "table": table_case,
    "forecast": pytest.param(forecast_case, marks=pytest.mark.slow),
    "language": language_case,
}


def train(config: Path, data: Path, name: str) -> list[str]:
    return [*map(str, ("train", "--config", config, "--data", data, "--output", "runs", "--name", name)), "--quiet"]


def kill_at_random(project: Path, arguments: list[str], run_dir: Path, steps: int, rng: random.Random) -> int:
    """Start `deepwright ARGUMENTS`, SIGKILL it a little after its first checkpoint past a random step drawn from
    the middle of the run (a step that ends no epoch), and return that step."""
    target = rng.randrange(steps // 5, steps // 2)
    child = subprocess.Popen(
        [sys.executable, "-m", "deepwright", *arguments],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    checkpoints = run_dir / "checkpoints"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            names = os.listdir(checkpoints) if checkpoints.is_dir() else []
            if any(name.startswith("step-") and int(name[5:13]) >= target for name in names if name.endswith(".pt")):
                time.sleep(rng.uniform(0, 0.02))
                break
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
    finally:
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"the run ended before the kill (target step {target}): {stderr!r}"
    return target


def records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [{key: value for key, value in json.loads(line).items() if key not in TIMINGS} for line in lines]


def assert_same_run(expected: Path, actual: Path) -> None:
    whole = load_file(expected / "model" / "weights.safetensors")
    resumed = load_file(actual / "model" / "weights.safetensors")
    assert whole.keys() == resumed.keys()
    for name, tensor in whole.items():
        assert resumed[name].dtype == tensor.dtype and resumed[name].shape == tensor.shape, name
        assert torch.equal(resumed[name].reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name
    assert records(actual) == records(expected)
    assert json.loads((actual / "metrics.json").read_text()) == json.loads((expected / "metrics.json").read_text())


@pytest.mark.usefixtures("no_plots")
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_kill_nine_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path: Path, case: Any) -> None:
    config, data, steps = case(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)

    killed = tmp_path / "runs" / "killed"
    target = kill_at_random(tmp_path, train(tmp_path / "config.yaml", data, "killed"), killed, steps, rng)
    resumed = run_cli("train", "--resume", killed, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, f"(seed {seed}, target step {target}) {resumed.stderr}"
    assert not list((killed / "checkpoints").glob(".*")), "a temporary file was left"
    # The uninterrupted run, in this process (the same code and thread count as the CLI's, without its start-up).
    dp.Pipeline.from_config(config).fit(data, output_dir=tmp_path / "runs", run_name="whole", progress=False)
    assert_same_run(tmp_path / "runs" / "whole", killed)
