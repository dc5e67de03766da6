"""The model-kind table: one kind per config model_type, each offering the whole `ModelKind` contract, and the
run-directory helpers every kind writes with."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from deepwright.config import MODEL_TYPES
from deepwright.data.clean import CleaningReport
from deepwright.errors import ConfigError, DataError
from deepwright.kinds import MODEL_KINDS, ModelKind, bundle_kind, model_kind
from deepwright.runs import TrainResult, new_run_dir, read_run_json


def test_every_config_model_type_has_exactly_one_kind() -> None:
    assert set(MODEL_KINDS) == set(MODEL_TYPES)
    assert all(kind.name == name for name, kind in MODEL_KINDS.items())


@pytest.mark.parametrize("name", sorted(MODEL_KINDS))
def test_each_kind_implements_the_whole_contract(name: str) -> None:
    kind = model_kind(name)
    members = [member for member in vars(ModelKind) if not member.startswith("_")]
    assert {"fit", "load", "evaluate", "predict_file", "export", "output_types"} <= set(members)
    for member in members:
        assert hasattr(kind, member), f"{type(kind).__name__} lacks {member}"
        if callable(getattr(ModelKind, member, None)):
            expected = list(inspect.signature(getattr(ModelKind, member)).parameters)
            assert list(inspect.signature(getattr(type(kind), member)).parameters) == expected, member
    assert isinstance(kind.can_generate, bool)


def test_only_the_language_model_generates_and_refuses_rows() -> None:
    assert [name for name, kind in MODEL_KINDS.items() if kind.can_generate] == ["lm"]
    with pytest.raises(ConfigError, match="language model: it writes text and cannot predict rows; use generate"):
        model_kind("lm").predict_file(None, "rows.csv", None, chunk_rows=10, progress=False)
    with pytest.raises(ConfigError, match="cannot export rows"):
        model_kind("lm").export(None, None, quantize=None, data=None)
    with pytest.raises(ConfigError, match="a forecast runs from its bundle"):
        model_kind("forecast").export(None, None, quantize=None, data=None)


@pytest.mark.parametrize("runtime", ["onnx"])
@pytest.mark.parametrize("name", ["lm", "forecast"])
def test_torch_only_kinds_refuse_another_runtime_before_reading(name: str, runtime: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"runs on torch only, not '{runtime}'"):
        model_kind(name).load(tmp_path, runtime=runtime, onnx_path=None)


@pytest.mark.parametrize(
    ("config_json", "expected"),
    [
        ({"model_type": "lm"}, "lm"),
        ({"model_type": "forecast"}, "forecast"),
        ({"input_features": []}, "ecd"),  # a table config may leave model_type out
        ("not json {", "ecd"),  # unreadable: the table loader says what is wrong
        (["a", "list"], "ecd"),
        ({"model_type": "gan"}, "ecd"),
    ],
)
def test_bundle_kind_glances_at_config_json(config_json: object, expected: str, tmp_path: Path) -> None:
    text = config_json if isinstance(config_json, str) else json.dumps(config_json)
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    assert bundle_kind(tmp_path).name == expected


def test_bundle_kind_of_a_missing_folder_is_the_table_kind(tmp_path: Path) -> None:
    assert bundle_kind(tmp_path / "absent").name == "ecd"


def result(epochs: int, *, stopped_early: bool = False) -> TrainResult:
    return TrainResult(
        source="data.csv",
        run_dir=Path("runs/data"),
        bundle_dir=Path("runs/data/model"),
        metrics={},
        history=[{"epoch": epoch} for epoch in range(1, epochs + 1)],
        cleaning=CleaningReport(rows_in=10, rows_out=9, dropped={"missing 'y' (drop_row)": 1}),
        split_sizes={"train": 7, "validation": 1, "test": 1},
        best_epoch=1 if stopped_early else None,
        stopped_early=stopped_early,
        seconds=1.25,
    )


def test_summary_lines_count_epochs_in_words() -> None:
    assert result(1).summary_lines() == [
        "data: data.csv — 10 rows, 1 dropped (missing 'y' (drop_row): 1)",
        "split: train 7, validation 1, test 1",
        "trained 1 epoch in 1.2 s",
    ]
    assert result(3, stopped_early=True).summary_lines()[-1] == "trained 3 epochs in 1.2 s, stopped early; best epoch 1"


def test_a_run_that_describes_itself_keeps_its_own_summary() -> None:
    own = result(2)
    own.summary = ["corpus: text.txt", "trained 40 steps in 1.0 s"]
    assert own.summary_lines() == own.summary


def test_new_run_dir_numbers_a_taken_name(tmp_path: Path) -> None:
    assert [new_run_dir(tmp_path / "runs", "titanic").name for _ in range(3)] == ["titanic", "titanic-2", "titanic-3"]


def test_read_run_json_names_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a run directory written by 'deepwright train'"):
        read_run_json(tmp_path, "run.json")
