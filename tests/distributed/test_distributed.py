"""Training in several processes through torchrun (gloo on the CPU): the same run as one process, every model
kind, several "machines" on this one, and failures that end the run at once with the failing rank's message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

import deepwright as dp
from deepwright.cli.parser import build_parser
from deepwright.errors import ConfigError
from deepwright.training.distributed import Distributed
from tests.distributed.conftest import run, train_command
from tests.helpers import assert_user_error, make_config, write_config

RELATIVE_TOLERANCE = 1e-5  # float sums in another order (two half batches, gradients averaged by DDP)

FAILING_RANK = """
import os
if os.environ.get("RANK") == "1":
    import deepwright.training.trainer as trainer
    from deepwright.errors import DataError

    def iterate_batches(*args, **kwargs):
        raise DataError("value 'n/a' is not a number", column="age", row=7, source="data.csv")

    trainer.iterate_batches = iterate_batches
"""


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_two_processes_train_the_one_process_run(table_project: Path) -> None:
    single = dp.Pipeline.from_config(table_project / "config.yaml").fit(
        table_project / "data.csv", output_dir=table_project / "single", progress=False
    )
    completed = run(train_command(table_project, "--nproc", 2), table_project)
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (table_project / "runs").iterdir()  # one run directory, written by rank 0
    assert completed.stdout.count("run directory:") == 1
    expected, actual = records(single.run_dir), records(run_dir)
    assert [record["step"] for record in actual] == [record["step"] for record in expected]
    for mine, theirs in zip(actual, expected):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert mine[key] == pytest.approx(theirs[key], rel=RELATIVE_TOLERANCE), key
    frame = pd.read_csv(table_project / "data.csv")
    labels = dp.load(run_dir / "model").predict(frame)["label_prediction"].tolist()
    assert labels == dp.load(single.bundle_dir).predict(frame)["label_prediction"].tolist()


def test_a_rank_that_fails_ends_the_run_with_its_message(table_project: Path) -> None:
    (table_project / "hooks").mkdir()
    (table_project / "hooks" / "sitecustomize.py").write_text(FAILING_RANK)
    started = time.perf_counter()
    completed = run(
        train_command(table_project, "--nproc", 2),
        table_project,
        env={"PYTHONPATH": str(table_project / "hooks"), "DEEPWRIGHT_DISTRIBUTED_TIMEOUT": "600"},
    )
    seconds = time.perf_counter() - started
    message = assert_user_error(completed, max_lines=1)
    assert message == "error: rank 1: data.csv, row 7, column 'age': value 'n/a' is not a number"
    assert seconds < 120  # rank 0, left waiting in a collective, was stopped: no wait for the 600 s timeout


def test_a_batch_the_processes_cannot_share_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"trainer.batch_size 15 does not divide among 2 processes.*such as 16"):
        Distributed(rank=0, world_size=2).per_rank_batch(15, "trainer.batch_size")


def test_the_launcher_refuses_a_batch_the_processes_cannot_share(table_project: Path, cli) -> None:
    write_config(table_project, make_config(batch_size=15))
    arguments = ("--config", "config.yaml", "--data", "data.csv", "--nproc", 2, "--nnodes", 2, "--node-rank", 0)
    message = assert_user_error(cli("train", *arguments, cwd=table_project))
    assert "trainer.batch_size 15 does not divide among 4 processes" in message  # before any worker starts
    assert not (table_project / "runs").exists()


def test_launcher_options_need_nproc(table_project: Path, cli) -> None:
    completed = cli("train", "--config", "config.yaml", "--data", "data.csv", "--nnodes", "2", cwd=table_project)
    assert "--nnodes goes with --nproc" in assert_user_error(completed)


def test_the_workers_get_every_train_option_but_the_launchers() -> None:
    from deepwright.cli.commands import worker_arguments
    from deepwright.training.launch import LAUNCH_OPTIONS

    parser = build_parser()
    given = ["train", "--config", "c.yaml", "--data", "d.csv", "--output", "out", "--name", "n", "--quiet"]
    launcher = ["--nproc", "2", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "h:1", "--master-port", "9"]
    args = parser.parse_args([*given, *launcher])
    again = parser.parse_args(["train", *worker_arguments(args)])
    assert vars(again) == {**vars(args), **dict.fromkeys(LAUNCH_OPTIONS)}
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:  # every option can be written back from its destination
        if action.dest != "help":
            assert f"--{action.dest.replace('_', '-')}" in action.option_strings, action.option_strings
            assert action.nargs in (None, 0) and action.const in (None, True), action.option_strings


def test_nproc_under_torchrun_is_refused(table_project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "run")  # what torchrun gives its workers
    completed = cli("train", "--config", "config.yaml", "--data", "data.csv", "--nproc", 2, cwd=table_project)
    assert "already runs under it" in assert_user_error(completed)
