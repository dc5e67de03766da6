"""The serve and export commands' own checks, in-process: options that cannot work together, a missing extra,
and export errors as one line with exit status 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.helpers import Trained, assert_user_error


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--onnx", "model.onnx"], "--onnx needs --runtime onnx"),
        (["--token", "  "], "--token is empty"),
        (["--max-body-mb", "0"], "--max-body-mb must be above 0"),
        (["--batch-wait-ms", "-1"], "--batch-wait-ms at least 0"),
        (["--host", "no.such.host.invalid"], "unknown host"),
    ],
)
def test_serve_refuses_options_that_cannot_work(
    trained: Trained, cli, tmp_path: Path, options: list, words: str
) -> None:
    outcome = cli("serve", "--model", trained.result.bundle_dir, *options, cwd=tmp_path)
    assert words in assert_user_error(outcome)


def test_a_missing_extra_says_how_to_install_it(
    trained: Trained,
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == "onnxruntime" else real(name, *rest)
    )
    for command in (["serve", "--runtime", "onnx"], ["export"]):
        outcome = cli(*command, "--model", trained.result.bundle_dir, cwd=tmp_path)
        message = assert_user_error(outcome)
        assert "onnxruntime not installed" in message and "pip install 'deepwright[serve]'" in message


def test_an_export_error_is_one_line(trained: Trained, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepwright.errors import DeployError

    def refuse(*args: object, **options: object) -> None:
        raise DeployError("cannot export the model to ONNX: the combiner (Strange) cannot be exported (reason)")

    monkeypatch.setattr("deepwright.deploy.onnx.export_onnx", refuse)
    outcome = cli("export", "--model", trained.result.bundle_dir, "--output", tmp_path / "m.onnx", cwd=tmp_path)
    assert "the combiner (Strange) cannot be exported" in assert_user_error(outcome)
    assert not (tmp_path / "m.onnx").exists()
