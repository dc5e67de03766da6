"""The command line run in-process through `deepwright.cli.main`.

Every user mistake exits with status 2 and a one- or two-line 'error:' message naming the file, row, column
or key, with no traceback and nothing written; an interrupted run exits with 130 and resumes to the same model.
tests/e2e runs a few of these as real subprocesses; here they cost milliseconds instead of a torch import each.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file, save_file

from tests.helpers import (
    TARGET,
    Outcome,
    Trained,
    assert_user_error,
    files_under,
    make_config,
    make_frame,
    write_frame,
)

CLI = Callable[..., Outcome]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working folder with good data and a good one-epoch config; each test spoils one thing."""
    write_frame(make_frame(60), tmp_path / "people.csv")
    write_config(tmp_path / "config.yaml", make_config(epochs=1))
    return tmp_path


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def train(cli: CLI, project: Path, *, data: str = "people.csv", config: str = "config.yaml", max_lines: int = 2) -> str:
    """Run `deepwright train` expecting a user error; check nothing at all was written; return the message."""
    before = files_under(project)
    completed = cli("train", "--config", config, "--data", data, "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(completed, max_lines=max_lines)
    assert files_under(project) == before  # no run directory, no partial files
    return message


def test_missing_target_column(cli: CLI, project: Path) -> None:
    write_frame(make_frame(60).drop(columns=[TARGET]), project / "people.csv")
    message = train(cli, project)
    assert "people.csv" in message
    assert "output column 'label' not found" in message


def test_missing_input_column_named_in_the_config(cli: CLI, project: Path) -> None:
    config = make_config(epochs=1)
    config["input_features"][0]["name"] = "agee"
    write_config(project / "config.yaml", config)
    assert "input column 'agee' not found" in train(cli, project)


def test_target_with_a_single_class(cli: CLI, project: Path) -> None:
    frame = make_frame(60)
    frame[TARGET] = "high"
    write_frame(frame, project / "people.csv")
    message = train(cli, project)
    assert "column 'label'" in message
    assert "single value" in message


def test_empty_file(cli: CLI, project: Path) -> None:
    (project / "empty.csv").write_text("")
    message = train(cli, project, data="empty.csv")
    assert "empty.csv" in message
    assert "empty" in message


def test_header_only_file(cli: CLI, project: Path) -> None:
    (project / "header.csv").write_text("age,city,member,income,label\n")
    assert "no data rows" in train(cli, project, data="header.csv")


def test_binary_garbage(cli: CLI, project: Path) -> None:
    (project / "garbage.csv").write_bytes(np.random.default_rng(0).bytes(3000))
    message = train(cli, project, data="garbage.csv")
    assert "garbage.csv" in message
    assert "cannot be read as CSV" in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_permission_denied(cli: CLI, project: Path) -> None:
    (project / "people.csv").chmod(0)
    try:
        assert "permission denied" in train(cli, project)
    finally:
        (project / "people.csv").chmod(0o644)


def test_missing_data_file(cli: CLI, project: Path) -> None:
    message = train(cli, project, data="nope.csv")
    assert "nope.csv" in message
    assert "no such file" in message


def test_a_folder_as_data(cli: CLI, project: Path) -> None:
    (project / "folder").mkdir()
    assert "is a folder" in train(cli, project, data="folder")


def test_unknown_config_key_suggests_the_nearest(cli: CLI, project: Path) -> None:
    config = make_config()
    config["trainer"] = {"epoch": 1}
    write_config(project / "config.yaml", config)
    message = train(cli, project, max_lines=3)
    assert "config.yaml" in message
    assert "trainer.epoch: unknown key; did you mean 'epochs'?" in message


def test_wrong_type_in_the_config(cli: CLI, project: Path) -> None:
    config = make_config()
    config["trainer"]["batch_size"] = "large"
    write_config(project / "config.yaml", config)
    message = train(cli, project, max_lines=3)
    assert "trainer.batch_size" in message
    assert "'large'" in message


def test_several_config_problems_one_line_each(cli: CLI, project: Path) -> None:
    config = make_config()
    config["trainer"] = {"epoch": 1, "batch_size": "large"}
    config["input_features"][0]["type"] = "numbr"
    write_config(project / "config.yaml", config)
    message = train(cli, project, max_lines=4)
    lines = message.splitlines()
    assert len(lines) == 4
    assert "did you mean 'number'" in message


def test_yaml_syntax_error(cli: CLI, project: Path) -> None:
    (project / "config.yaml").write_text("input_features:\n  - {name: age, type: number\n", encoding="utf-8")
    message = train(cli, project)
    assert "not valid YAML" in message
    assert "line" in message


def test_missing_config_file(cli: CLI, project: Path) -> None:
    assert "no such config file" in train(cli, project, config="nope.yaml")


def test_non_numeric_value_names_row_and_column(cli: CLI, project: Path) -> None:
    frame = make_frame(60)
    frame["age"] = frame["age"].astype(object)
    frame.loc[41, "age"] = "forty-two"
    write_frame(frame, project / "people.csv")
    message = train(cli, project)
    assert "people.csv, row 42, column 'age'" in message
    assert "'forty-two'" in message


def test_infinite_input_names_row_and_column(cli: CLI, project: Path) -> None:
    frame = make_frame(60)
    frame.loc[9, "income"] = np.inf
    frame.loc[[2, 4], "age"] = np.nan  # empty cells are fine: they are filled
    write_frame(frame, project / "people.csv")
    message = train(cli, project)
    assert "people.csv, row 10, column 'income'" in message
    assert "not finite" in message


@pytest.mark.usefixtures("no_plots")
def test_empty_input_cells_train(cli: CLI, project: Path) -> None:
    frame = make_frame(60)
    frame.loc[[2, 4, 30], "age"] = np.nan
    frame.loc[[5], "city"] = None
    write_frame(frame, project / "people.csv")
    completed = cli(
        "train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", "--quiet", cwd=project
    )
    assert completed.returncode == 0, completed.stderr
    assert (project / "runs" / "people" / "model" / "manifest.json").is_file()


def test_unknown_early_stopping_metric_writes_nothing(cli: CLI, project: Path) -> None:
    write_config(project / "config.yaml", make_config(epochs=1, early_stopping={"metric": "val_acc"}))
    message = train(cli, project)
    assert "trainer.early_stopping.metric" in message


def test_train_without_data(cli: CLI, project: Path) -> None:
    completed = cli("train", "--config", "config.yaml", cwd=project)
    assert "needs --data" in assert_user_error(completed)


@pytest.fixture
def bundle(trained: Trained, project: Path) -> Path:
    """A copy of the session's trained bundle inside the project folder."""
    return Path(shutil.copytree(trained.result.bundle_dir, project / "model"))


def predict(cli: CLI, project: Path, *args: object) -> str:
    """Run `deepwright predict … --output preds.csv` expecting a user error; check nothing was written."""
    before = files_under(project)
    completed = cli("predict", *args, "--output", "preds.csv", cwd=project)
    message = assert_user_error(completed)
    assert files_under(project) == before  # in particular no preds.csv, and no temporary file beside it
    return message


def test_predict_file_missing_a_training_column(cli: CLI, project: Path, bundle: Path) -> None:
    write_frame(make_frame(20).drop(columns=["city"]), project / "rows.csv")
    message = predict(cli, project, "--model", "model", "--data", "rows.csv")
    assert "rows.csv" in message
    assert "input column 'city' not found" in message


def test_predict_with_a_changed_weight_file(cli: CLI, project: Path, bundle: Path) -> None:
    weights = bundle / "weights.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 2
    save_file(tensors, weights)
    message = predict(cli, project, "--model", "model", "--data", "people.csv")
    assert "weights.safetensors" in message
    assert "sha256" in message


def test_predict_with_a_missing_model(cli: CLI, project: Path) -> None:
    assert "no bundle here" in predict(cli, project, "--model", "nowhere", "--data", "people.csv")


def test_predict_with_a_bad_value(cli: CLI, project: Path, bundle: Path) -> None:
    frame = make_frame(20)
    frame["member"] = frame["member"].astype(object)
    frame.loc[6, "member"] = "maybe"
    write_frame(frame, project / "rows.csv")
    message = predict(cli, project, "--model", "model", "--data", "rows.csv")
    assert "rows.csv, row 7, column 'member'" in message


def test_evaluate_without_the_target_column(cli: CLI, project: Path, bundle: Path) -> None:
    write_frame(make_frame(20).drop(columns=[TARGET]), project / "rows.csv")
    before = files_under(project)
    completed = cli("evaluate", "--model", "model", "--data", "rows.csv", "--output", "eval", cwd=project)
    assert "output column 'label' not found" in assert_user_error(completed)
    assert files_under(project) == before


def test_init_with_an_unknown_target(cli: CLI, project: Path) -> None:
    before = files_under(project)
    completed = cli("init", "--data", "people.csv", "--target", "labl", "-o", "new.yaml", cwd=project)
    assert "target column 'labl' not found" in assert_user_error(completed)
    assert files_under(project) == before


def test_unknown_dataset(cli: CLI, project: Path) -> None:
    completed = cli("datasets", "titanic", cwd=project)
    assert "unknown dataset 'titanic'" in assert_user_error(completed)


@pytest.mark.usefixtures("no_plots")
def test_interrupted_training_exits_130_and_resumes_to_the_same_model(
    cli: CLI, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(project / "config.yaml", make_config(epochs=3))
    arguments = ("train", "--config", "config.yaml", "--data", "people.csv", "--quiet")
    assert cli(*arguments, "--output", "whole", cwd=project).returncode == 0

    from deepwright.training.checkpoint import CheckpointFolder

    original = CheckpointFolder.save

    def save_then_interrupt(folder: CheckpointFolder, payload: dict) -> None:
        original(folder, payload)
        if payload["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointFolder, "save", save_then_interrupt)
    interrupted = cli(*arguments, "--output", "parts", cwd=project)
    assert interrupted.returncode == 130
    assert interrupted.stderr.strip() == "interrupted"
    run_dir = project / "parts" / "people"
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 1

    monkeypatch.setattr(CheckpointFolder, "save", original)
    resumed = cli("train", "--resume", run_dir, "--quiet", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert "trained 3 epochs" in resumed.stdout
    whole = load_file(project / "whole" / "people" / "model" / "weights.safetensors")
    parts = load_file(run_dir / "model" / "weights.safetensors")
    assert whole.keys() == parts.keys()
    for name, tensor in whole.items():
        assert (parts[name] == tensor).all(), name


def test_resume_of_a_folder_that_is_not_a_run(cli: CLI, project: Path) -> None:
    completed = cli("train", "--resume", "nowhere", cwd=project)
    assert "not found" in assert_user_error(completed)


@pytest.mark.parametrize("name", ["exp/one", "../escaped"])
@pytest.mark.usefixtures("no_plots")
def test_run_name_stays_inside_the_output_folder(cli: CLI, project: Path, name: str) -> None:
    before = files_under(project)
    completed = cli(
        "train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", "--name", name, cwd=project
    )
    if completed.returncode == 0:
        assert {path.split("/")[0] for path in files_under(project) - before} == {"runs"}
    else:
        assert_user_error(completed)
        assert files_under(project) == before
