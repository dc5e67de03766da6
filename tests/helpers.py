"""Helpers shared by the tests: tiny generated tables, the configs that fit them, and CLI checks.

Everything is generated in the test process (no network, no downloads) and kept small.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

# The columns of `make_frame`: two numbers, a category, a binary, and a binary target that depends on them.
INPUT_FEATURES = [
    {"name": "age", "type": "number"},
    {"name": "city", "type": "category"},
    {"name": "member", "type": "binary"},
    {"name": "income", "type": "number"},
]
TARGET = "label"


def make_frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """A small mixed-type table whose binary `label` is learnable from `age` and `city`.

    >>> make_frame(4).columns.tolist()
    ['age', 'city', 'member', 'income', 'label']
    """
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows).round(1)
    city = rng.choice(["Lyon", "Paris", "Nice"], rows)
    frame = pd.DataFrame(
        {
            "age": age,
            "city": city,
            "member": rng.choice(["yes", "no"], rows),
            "income": rng.normal(3000, 500, rows).round(),
        }
    )
    frame[TARGET] = np.where(age + 10 * (city == "Lyon") > 44, "high", "low")
    return frame


def make_config(**trainer: Any) -> dict[str, Any]:
    """A config dict for `make_frame`: a small MLP, few epochs, no early stopping; `trainer` overrides."""
    return {
        "input_features": [dict(feature) for feature in INPUT_FEATURES],
        "output_features": [{"name": TARGET, "type": "binary"}],
        "combiner": {"type": "concat", "dims": [16], "activation": "relu"},
        "preprocessing": {"split": {"method": "stratified", "fractions": [0.7, 0.15, 0.15], "seed": 7}},
        "trainer": {"epochs": 3, "batch_size": 16, "optimizer": {"type": "adam", "lr": 0.01}, **trainer},
    }


def cells(*values: Any) -> np.ndarray:
    """A column of cells (an object array) as a feature reads it; paths become strings."""
    column = np.empty(len(values), dtype=object)
    column[:] = [str(value) if isinstance(value, Path) else value for value in values]
    return column


def assert_restores(fitted: Any, fresh: Any, state: dict[str, Any], values: np.ndarray) -> None:
    """`fresh`, loaded with `state` (`fitted`'s, through JSON), has `fitted`'s state, preprocesses `values` the
    same, and builds an encoder that encodes them the same from the same seed."""
    import torch

    fresh.load_state(state)
    assert fresh.state() == fitted.state()
    np.testing.assert_array_equal(fresh.transform(values), fitted.transform(values))
    torch.manual_seed(0)
    first = fitted.build_encoder().eval()
    torch.manual_seed(0)
    second = fresh.build_encoder().eval()
    batch = torch.from_numpy(fitted.transform(values))
    assert torch.equal(first(batch), second(batch))


def write_config(folder: Path, config: dict) -> Path:
    """`config` as `folder`/config.yaml, keys in their order; returns the path."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` in the format its suffix names (.csv, .tsv, .parquet, .jsonl, .json); return the path."""
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    else:
        raise ValueError(f"no writer for {suffix}")
    return path


@dataclass
class Trained:
    """A fitted pipeline, its `TrainResult`, and the CSV file it was trained on."""

    pipeline: Any
    result: Any
    data: Path


@dataclass
class Outcome:
    """A command run in-process: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


class Completed(Protocol):
    """What a finished command gives: a `subprocess.CompletedProcess`, or the in-process equivalent."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: object, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m deepwright ARGS…` in a subprocess in `cwd`, capturing text output."""
    return subprocess.run(
        [sys.executable, "-m", "deepwright", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def train_error(cli: Callable[..., Outcome], project: Path, data: str) -> str:
    """Run `deepwright train` on `data` in `project` expecting a user error; check nothing at all was written;
    return the message."""
    before = files_under(project)
    completed = cli("train", "--config", "config.yaml", "--data", data, "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(completed)
    assert files_under(project) == before  # no run directory, no cache, no partial files
    return message


def files_under(folder: Path) -> set[str]:
    """Every file and folder below `folder`, as relative paths (hidden ones included)."""
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def assert_user_error(completed: Completed, *, max_lines: int = 2) -> str:
    """Exit status 2, a short 'error:' message on stderr, no traceback; return the message."""
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert 1 <= len(lines) <= max_lines, completed.stderr
    assert lines[0].startswith("error: ")
    return completed.stderr.strip()
