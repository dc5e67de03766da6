"""Shared fixtures: a fresh table, a model trained once per session, quiet runs, and the CLI run in-process.

Everything is generated in the test process (no network, no downloads) and kept small so that the whole
suite runs in well under three minutes on two CPU cores. Plain helpers live in `tests/helpers.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import Outcome, Trained, make_config, make_frame, write_frame

# The models here are tiny: one thread is faster than several fighting over two cores. Set before torch is
# imported (it reads this once); the CLI subprocesses of tests/e2e inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def frame() -> pd.DataFrame:
    """A fresh copy of the default mixed-type table (120 rows)."""
    return make_frame()


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip matplotlib in runs whose plots a test does not look at (they cost about a second each)."""
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make decoding any image or audio file an error, for tests that a cache is read instead."""

    def decode_into(*args: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr("deepwright.features.decoding.decode_into", decode_into)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A pipeline trained once per session on `make_frame()` written as CSV (4 epochs).

    Tests must not modify its run directory or bundle; copy them first.
    """
    import deepwright as dp

    folder = tmp_path_factory.mktemp("trained")
    data = write_frame(make_frame(), folder / "people.csv")
    pipeline = dp.Pipeline.from_config(make_config(epochs=4))
    result = pipeline.fit(data, output_dir=folder / "runs", run_name="people", progress=False)
    return Trained(pipeline, result, data)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """Run `deepwright ARGS…` in this process (`deepwright.cli.main`) from the folder `cwd`.

    The same code path as the installed command without the cost of a new interpreter (torch alone takes
    seconds to import); tests/e2e runs the real subprocess.
    """
    from deepwright.cli import main

    def run(*args: object, cwd: Path) -> Outcome:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        status = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def gpt2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 checkpoint folder (config.json, model.safetensors, tokenizer.json; see tests/gpt2.py),
    made once per session. Tests must not change it; copy it first."""
    pytest.importorskip("transformers")
    from tests.gpt2 import write_gpt2_checkpoint

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return write_gpt2_checkpoint(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="session")
def bert_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """kind (bert, distilbert, roberta) → a tiny random checkpoint folder of that kind (see tests/pretrained.py),
    made once per session on first use. Tests must not change one; copy it first."""
    pytest.importorskip("transformers")
    from tests.pretrained import write_checkpoint

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    made: dict[str, Path] = {}

    def checkpoint(kind: str = "bert") -> Path:
        if kind not in made:
            made[kind] = write_checkpoint(tmp_path_factory.mktemp(kind), kind)
        return made[kind]

    return checkpoint
