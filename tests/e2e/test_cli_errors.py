"""A few bad inputs through the real `deepwright` process, one per kind of user error (data, config, bundle):
exit status 2, a short 'error:' message, no traceback, nothing written. tests/cli/test_table.py covers every case
in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file, save_file

from tests.helpers import Trained, assert_user_error, files_under, make_config, make_frame, run_cli, write_frame


@pytest.fixture
def project(workspace: Path) -> Path:
    write_frame(make_frame(60), workspace / "people.csv")
    (workspace / "config.yaml").write_text(yaml.safe_dump(make_config(epochs=1)), encoding="utf-8")
    return workspace


def test_data_error_names_file_row_and_column(project: Path) -> None:
    frame = make_frame(60)
    frame.loc[9, "income"] = np.inf
    write_frame(frame, project / "people.csv")
    before = files_under(project)
    completed = run_cli("train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", cwd=project)
    message = assert_user_error(completed)
    assert message == (
        "error: people.csv, row 10, column 'income': value inf is not finite; replace it or leave the cell empty"
    )
    assert files_under(project) == before


def test_config_error_suggests_the_nearest_key(project: Path) -> None:
    config = make_config()
    config["trainer"] = {"epoch": 1}
    (project / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    before = files_under(project)
    completed = run_cli("train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", cwd=project)
    message = assert_user_error(completed)
    assert message.splitlines() == [
        "error: config.yaml: invalid config:",
        "  trainer.epoch: unknown key; did you mean 'epochs'?",
    ]
    assert files_under(project) == before


def test_bundle_changed_after_saving(project: Path, trained: Trained) -> None:
    bundle = Path(shutil.copytree(trained.result.bundle_dir, project / "model"))
    tensors = load_file(bundle / "weights.safetensors")
    name = next(iter(tensors))
    tensors[name] = -tensors[name]
    save_file(tensors, bundle / "weights.safetensors")
    before = files_under(project)
    completed = run_cli("predict", "--model", "model", "--data", "people.csv", "--output", "out.csv", cwd=project)
    message = assert_user_error(completed)
    assert "model/weights.safetensors" in message
    assert "sha256" in message
    assert files_under(project) == before
