"""Bad image input through the command line, in-process (`deepwright.cli.main`), and through `Predictor.predict`.

Each user mistake exits with status 2 and a one- or two-line 'error:' message naming the file, row and column
(and the image's path), with no traceback and nothing written. Grey and colour images mixed, and images of
different sizes, are not mistakes: they train, with the documented conversion.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import Outcome, assert_user_error, files_under, train_error, write_config
from tests.images import DIGITS, image_config, image_project, spoil_image, write_image

CLI = Callable[..., Outcome]
FIRST_VALIDATION_ROW, FIRST_TEST_ROW = 5, 7  # of the first class (tests.images.SPLITS)
spoil = spoil_image


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`tests.images.image_project`: the digits, data.csv with a split column, a one-epoch config; each test
    spoils one thing."""
    return image_project(tmp_path)


@pytest.fixture
def bundle(image_bundle: Path) -> Path:
    """The one-epoch digits bundle of tests/cli/conftest.py; tests must not modify it."""
    return image_bundle


def train(cli: CLI, project: Path, *, data: str = "data.csv") -> str:
    """`tests.helpers.train_error` on `data`: a user error, nothing written; returns the message."""
    return train_error(cli, project, data)


def failed_train(cli: CLI, project: Path, *, data: str = "data.csv") -> str:
    """Run `deepwright train` expecting a user error; check that no run directory and no partial file was written
    (only complete files of the decoded-image cache may be left); return the message."""
    before = files_under(project)
    completed = cli("train", "--config", "config.yaml", "--data", data, "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(completed)
    written = files_under(project) - before
    assert all(path in ("runs", "runs/.cache") or path.startswith("runs/.cache/images-") for path in written), written
    assert not any(path.endswith(".partial") for path in written)
    return message


def corrupt(path: Path) -> Path:
    """A file with a PNG signature and nothing readable after it."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8)
    return path


def truncated(path: Path) -> Path:
    """A real PNG cut short: the header reads, the pixels do not."""
    source = write_image(path.with_name("whole.png"), (16, 16), seed=3)
    path.write_bytes(source.read_bytes()[:-40])
    return path


# -- files that cannot be read ------------------------------------------------------------------------------


def test_a_missing_image_file_names_the_row_and_the_path(cli: CLI, project: Path) -> None:
    spoil(project, 2, "images/zero/missing.png")
    message = train(cli, project)
    assert message.startswith("error: data.csv, row 2, column 'image': ")
    assert str(project / "images" / "zero" / "missing.png") in message
    assert "does not exist" in message


@pytest.mark.parametrize("row", [FIRST_VALIDATION_ROW, FIRST_TEST_ROW], ids=["validation", "test"])
def test_a_missing_image_file_outside_the_training_rows(cli: CLI, project: Path, row: int) -> None:
    spoil(project, row, "images/zero/missing.png")
    message = failed_train(cli, project)  # a left-over cache is a separate bug
    assert f"row {row}, column 'image'" in message
    assert "missing.png" in message


def test_a_missing_image_file_in_validation_rows_with_lazy_decoding(cli: CLI, project: Path) -> None:
    write_config(
        project,
        image_config(epochs=1, split={"method": "column", "column": "split"}, image={"cache_memory_mb": 0}),
    )
    spoil(project, FIRST_VALIDATION_ROW, "images/zero/missing.png")
    message = failed_train(cli, project)  # a left-over cache is a separate bug
    assert f"row {FIRST_VALIDATION_ROW}, column 'image'" in message


@pytest.mark.parametrize("kind", ["corrupt", "text", "empty"])
def test_an_unreadable_image_file_names_the_row_and_the_path(cli: CLI, project: Path, kind: str) -> None:
    bad = project / "images" / "zero" / "bad.png"
    if kind == "corrupt":
        corrupt(bad)
    elif kind == "text":
        bad.write_text("this is a text file with an image's name\n")
    else:
        bad.write_bytes(b"")
    spoil(project, 3, "images/zero/bad.png")
    message = train(cli, project)
    assert message.startswith("error: data.csv, row 3, column 'image': ")
    assert f"{str(bad)!r} is not a readable image" in message


def test_a_truncated_image_file_names_the_row_and_the_path(cli: CLI, project: Path) -> None:
    """Its header reads, so the problem shows only when the pixels are decoded."""
    bad = truncated(project / "images" / "zero" / "bad.png")
    spoil(project, 3, "images/zero/bad.png")
    message = failed_train(cli, project)
    assert message.startswith("error: data.csv, row 3, column 'image': ")
    assert f"{str(bad)!r} is not a readable image" in message


def test_a_non_image_file_named_in_the_table(cli: CLI, project: Path) -> None:
    (project / "notes.txt").write_text("hello")
    spoil(project, 1, "notes.txt")
    message = train(cli, project)
    assert "row 1, column 'image'" in message
    assert "notes.txt" in message
    assert "not a readable image" in message


@pytest.mark.parametrize("row", [FIRST_VALIDATION_ROW, FIRST_TEST_ROW], ids=["validation", "test"])
def test_an_unreadable_file_outside_the_training_rows(cli: CLI, project: Path, row: int) -> None:
    corrupt(project / "images" / "bad.png")
    spoil(project, row, "images/bad.png")
    message = failed_train(cli, project)
    assert f"row {row}, column 'image'" in message
    assert "is not a readable image" in message


@pytest.mark.parametrize("where", ["truncated-training-row", "corrupt-test-row"])
def test_an_unreadable_file_writes_nothing_at_all(cli: CLI, project: Path, where: str) -> None:
    if where == "truncated-training-row":
        truncated(project / "images" / "bad.png")
        spoil(project, 3, "images/bad.png")
    else:
        corrupt(project / "images" / "bad.png")
        spoil(project, FIRST_TEST_ROW, "images/bad.png")
    train(cli, project)


def test_a_truncated_training_file_decoded_only_in_a_worker(
    cli: CLI, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training set larger than the sample the statistics are computed on (2,000 images), simulated by a
    sample of 1: the truncated file's header reads, so only its decoding for a training batch finds it."""
    monkeypatch.setattr("deepwright.features.image._STATISTICS_SAMPLE", 1)
    write_config(
        project,
        image_config(epochs=1, split={"method": "column", "column": "split"}, image={"cache_memory_mb": 0}),
    )
    truncated(project / "images" / "bad.png")
    spoil(project, 3, "images/bad.png")
    message = failed_train(cli, project)  # a left-over cache is a separate bug
    assert "row 3, column 'image'" in message


@pytest.mark.usefixtures("no_plots")
def test_empty_image_cells_can_drop_their_rows(cli: CLI, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])
    write_config(
        project,
        image_config(
            epochs=1, split={"method": "column", "column": "split"}, image={"missing": {"strategy": "drop_row"}}
        ),
    )
    spoil(project, 4, "")
    completed = cli("train", "--config", "config.yaml", "--data", "data.csv", "--quiet", cwd=project)
    assert completed.returncode == 0, completed.stderr
    facts = json.loads((project / "runs" / "data" / "run.json").read_text())
    assert facts["cleaning"]["rows_out"] == 23


# -- folders of class folders -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "init"])
def test_an_empty_class_folder_is_named(cli: CLI, project: Path, command: str) -> None:
    (project / "images" / "eight").mkdir()
    (project / "images" / "eight" / "README.txt").write_text("to do")
    before = files_under(project)
    if command == "train":
        completed = cli("train", "--config", "config.yaml", "--data", "images", "--quiet", cwd=project)
    else:
        completed = cli("init", "--data", "images", "-o", "inferred.yaml", cwd=project)
    message = assert_user_error(completed)
    assert message.startswith("error: images: ")
    assert "class folder 'eight' holds no image or audio files" in message
    assert files_under(project) == before


def test_a_folder_of_images_without_class_folders(cli: CLI, project: Path) -> None:
    message = train(cli, project, data="images/zero")
    assert "without class folders" in message


def test_a_corrupt_file_in_a_class_folder(cli: CLI, project: Path) -> None:
    corrupt(project / "images" / "one" / "0000-bad.png")
    write_config(project, image_config(epochs=1))
    message = failed_train(cli, project, data="images")
    assert "column 'image'" in message
    assert "0000-bad.png" in message
    assert "is not a readable image" in message


# -- differences that are not mistakes ------------------------------------------------------------------------


@pytest.mark.usefixtures("no_plots")
def test_grey_colour_and_sizes_mixed_train_with_the_documented_conversion(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grey and colour → 3 channels (any colour training image makes RGB); sizes → the most common training
    size."""
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])
    for label in ("cat", "dog"):
        for index in range(10):  # 6 of each class train: at least one is colour, most are 8×8
            size = (8, 8) if index < 7 else (10 + index, 6)
            mode = "RGB" if index % 2 else "L"
            write_image(tmp_path / "data" / label / f"{index}.png", size, mode, seed=index + 10 * (label == "dog"))
    write_config(tmp_path, image_config(epochs=1, split={"method": "stratified", "fractions": [0.6, 0.2, 0.2]}))
    completed = cli("train", "--config", "config.yaml", "--data", "data", "--quiet", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    state = json.loads((tmp_path / "runs" / "data" / "preprocessing.json").read_text())["inputs"]["image"]
    assert state["channels"] == 3
    assert state["size"] == [8, 8]


# -- predictions ----------------------------------------------------------------------------------------------


def test_predict_command_reads_base64_rows(cli: CLI, bundle: Path, tmp_path: Path) -> None:
    files = [DIGITS / "zero" / "0000.png", DIGITS / "seven" / "0007.png"]
    rows = [{"image": {"base64": base64.b64encode(path.read_bytes()).decode()}} for path in files]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    pd.DataFrame({"image": [str(path) for path in files]}).to_csv(tmp_path / "paths.csv", index=False)
    for data, output in (("requests.jsonl", "from-base64.csv"), ("paths.csv", "from-paths.csv")):
        completed = cli("predict", "--model", bundle, "--data", data, "--output", output, cwd=tmp_path)
        assert completed.returncode == 0, completed.stderr
    from_base64 = pd.read_csv(tmp_path / "from-base64.csv")
    from_paths = pd.read_csv(tmp_path / "from-paths.csv")
    pd.testing.assert_frame_equal(from_base64, from_paths)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_commands_name_a_missing_image(
    cli: CLI, bundle: Path, project: Path, command: str
) -> None:
    spoil(project, 6, "images/one/missing.png")
    before = files_under(project)
    completed = cli(command, "--model", bundle, "--data", "data.csv", "--output", "out", cwd=project)
    message = assert_user_error(completed)
    assert message.startswith("error: data.csv, row 6, column 'image': ")
    assert "missing.png" in message
    assert files_under(project) == before


# -- config mistakes ----------------------------------------------------------------------------------------
