"""Every model kind under 2 processes (gloo), FSDP on the CPU, and two "machines" meeting on 127.0.0.1. Each run
starts several Python processes, so these are slow tests (`-m slow`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.distributed.conftest import free_port, run, train_command
from tests.helpers import assert_user_error, write_config
from tests.images import image_project
from tests.pipelines.test_forecast import config as forecast_config
from tests.pipelines.test_forecast import series

pytestmark = pytest.mark.slow

SHAKESPEARE = Path(__file__).parents[1] / "fixtures" / "text" / "shakespeare.txt"
RELATIVE_TOLERANCE = 1e-4  # 20 AdamW steps on half batches, float sums in another order


def language_project(folder: Path, **trainer: object) -> Path:
    """A character GPT on the Shakespeare fixture: 20 steps of a global batch of 4 blocks, no dropout."""
    (folder / "data.txt").write_text(SHAKESPEARE.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    write_config(
        folder,
        {
            "model_type": "lm",
            "model": {"layers": 2, "heads": 2, "dim": 16, "block_size": 16},
            "trainer": {"max_steps": 20, "eval_every": 10, "eval_batches": 2, "batch_size": 4, **trainer},
        },
    )
    return folder


def records(runs: Path) -> list[dict]:
    (run_dir,) = (path for path in runs.iterdir() if not path.name.startswith("."))  # .cache beside it
    assert (run_dir / "model" / "manifest.json").is_file()
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_losses(actual: list[dict], expected: list[dict]) -> None:
    assert [record["step"] for record in actual] == [record["step"] for record in expected]
    for mine, theirs in zip(actual, expected):
        for key in ("train_loss", "val_loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=RELATIVE_TOLERANCE), key


def test_a_forecast_trains_in_two_processes(tmp_path: Path) -> None:
    series().to_csv(tmp_path / "data.csv", index=False)
    write_config(tmp_path, forecast_config())
    completed = run(train_command(tmp_path, "--nproc", 2), tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert len(records(tmp_path / "runs")) == 4


def test_an_image_model_trains_in_two_processes(tmp_path: Path) -> None:
    image_project(tmp_path)  # both ranks decode the images into the same cache at once
    completed = run(train_command(tmp_path, "--nproc", 2), tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert len(records(tmp_path / "runs")) == 1


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_language_model_in_two_processes_trains_the_one_process_model(tmp_path: Path, strategy: str) -> None:
    project = language_project(tmp_path, strategy=strategy, checkpoint=False)
    single = run(train_command(project, "--output", "single", data="data.txt"), project)
    assert single.returncode == 0, single.stderr
    completed = run(train_command(project, "--nproc", 2, data="data.txt"), project)
    assert completed.returncode == 0, completed.stderr
    assert_same_losses(records(project / "runs"), records(project / "single"))


def test_fsdp_refuses_checkpoints_it_cannot_write(tmp_path: Path) -> None:
    project = language_project(tmp_path, strategy="fsdp")
    message = assert_user_error(run(train_command(project, "--nproc", 2, data="data.txt"), project), max_lines=1)
    assert "trainer.strategy fsdp" in message and "trainer.checkpoint: false" in message


def test_two_machines_on_one_host_finish_one_run(table_project: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    launchers = [
        subprocess.Popen(
            train_command(
                table_project,
                *("--nproc", 1, "--nnodes", 2, "--node-rank", rank),
                *("--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint),
            ),
            cwd=table_project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [launcher.communicate(timeout=300) for launcher in launchers]
    assert [launcher.returncode for launcher in launchers] == [0, 0], [error for _, error in outputs]
    assert len(records(table_project / "runs")) == 3
    assert [output.count("run directory:") for output, _ in outputs] == [1, 0]
