"""Inferring a config from a table: column types, left-out columns with notes, split, target type, schedule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepwright.config import load_config
from deepwright.data.infer import (
    infer_column_type,
    infer_config,
    infer_target_type,
    training_schedule,
)
from deepwright.data.io import read_table
from deepwright.errors import DataError

ROWS = 100


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "row": np.arange(ROWS),  # unique and increasing: a row number
            "PassengerId": rng.permutation(ROWS) + 1,  # unique, shuffled, named like an id
            "height": rng.normal(170, 10, ROWS),
            "children": rng.integers(0, 5, ROWS),
            "smoker": rng.choice(["yes", "no"], ROWS),
            "colour": rng.choice(["red", "green", "blue", "grey"], ROWS),
            "comment": [f"free text number {index}" for index in range(ROWS)],  # several words a value: text
            "code": [f"A/{index}" for index in range(ROWS)],  # one or two words, all distinct: an identifier
            "constant": 7,
            "blank": [None] * ROWS,
            "price": rng.normal(100, 20, ROWS),
            "grade": rng.integers(1, 6, ROWS),
            "passed": rng.choice([0, 1], ROWS),
        }
    )


def inputs_of(config: dict) -> dict[str, str]:
    return {feature["name"]: feature["type"] for feature in config["input_features"]}


def test_types_of_inputs(table: pd.DataFrame) -> None:
    inference = infer_config(read_table(table), "price")
    assert inputs_of(inference.config) == {
        "height": "number",
        "children": "number",
        "smoker": "binary",
        "colour": "category",
        "comment": "text",
        "grade": "number",
        "passed": "binary",
    }
    load_config(inference.config)  # the inferred config is valid


def test_left_out_columns_get_a_note(table: pd.DataFrame) -> None:
    notes = infer_config(read_table(table), "price").notes
    for column, reason in (
        ("row", "identifier-like"),
        ("PassengerId", "identifier-like"),
        ("code", "identifier-like"),
        ("constant", "single value"),
        ("blank", "missing"),
    ):
        assert any(note.startswith(f"left out {column!r}") and reason in note for note in notes), column


def test_single_value_note_shows_the_plain_value(table: pd.DataFrame) -> None:
    notes = infer_config(read_table(table), "price").notes
    assert "left out 'constant': a single value (7)" in notes


@pytest.mark.parametrize(
    ("target", "expected"),
    [("price", "number"), ("grade", "category"), ("smoker", "binary"), ("passed", "binary"), ("colour", "category")],
)
def test_target_type(table: pd.DataFrame, target: str, expected: str) -> None:
    config = infer_config(read_table(table), target).config
    assert config["output_features"] == [{"name": target, "type": expected}]
    assert target not in inputs_of(config)


def test_regression_splits_randomly_classification_stratifies(table: pd.DataFrame) -> None:
    regression = infer_config(read_table(table), "price").config
    classification = infer_config(read_table(table), "colour").config
    assert regression["preprocessing"]["split"]["method"] == "random"
    assert classification["preprocessing"]["split"]["method"] == "stratified"
    assert classification["preprocessing"]["split"]["seed"] == 42


def test_split_column_is_detected_and_not_an_input(table: pd.DataFrame) -> None:
    table["Split"] = np.where(np.arange(ROWS) < 80, "train", "test")
    inference = infer_config(read_table(table), "price")
    assert inference.config["preprocessing"]["split"] == {"method": "column", "column": "Split"}
    assert "Split" not in inputs_of(inference.config)
    assert any("existing column 'Split'" in note for note in inference.notes)


def test_a_split_column_with_other_values_is_not_a_split(table: pd.DataFrame) -> None:
    table["split"] = np.where(np.arange(ROWS) < 50, "left", "right")
    config = infer_config(read_table(table), "price").config
    assert config["preprocessing"]["split"]["method"] == "random"
    assert inputs_of(config)["split"] == "binary"


def test_seed_model_and_training_options(table: pd.DataFrame) -> None:
    config = infer_config(read_table(table), "price").config
    assert config["combiner"] == {"type": "concat", "dims": [128], "activation": "relu", "dropout": 0.0}
    trainer = config["trainer"]
    assert trainer["batch_size"] == 32
    assert trainer["optimizer"] == {"type": "adam", "lr": 0.001}
    assert trainer["early_stopping"]["metric"] == "val_loss"


@pytest.mark.parametrize("rows", [100, 2000])
def test_epochs_and_patience_follow_the_training_rows(rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows)})
    inference = infer_config(read_table(frame), "y")
    trainer = inference.config["trainer"]
    epochs, patience = training_schedule(int(rows * 0.8))
    assert (trainer["epochs"], trainer["early_stopping"]["patience"]) == (epochs, patience)
    assert any(f"{int(rows * 0.8)} training rows" in note and f"{epochs} epochs" in note for note in inference.notes)


def test_small_tables_get_more_epochs_than_large_ones() -> None:
    sizes = [10, 100, 455, 1000, 10_000, 100_000, 10**6]
    schedules = [training_schedule(rows) for rows in sizes]
    epochs = [epochs for epochs, _ in schedules]
    assert epochs == sorted(epochs, reverse=True)
    assert epochs[0] > epochs[-1]
    for epochs_, patience in schedules:
        assert 1 <= patience < epochs_
    # Fewer passes over more data still means at least as many optimizer steps in all (batches of 32).
    steps = {rows: count * -(-rows // 32) for rows, (count, _) in zip(sizes, schedules)}
    assert steps[10**6] >= steps[455]


def test_constant_target_is_refused(table: pd.DataFrame) -> None:
    with pytest.raises(DataError) as caught:
        infer_config(read_table(table, name="t.csv"), "constant")
    assert caught.value.column == "constant"
    assert "fewer than two distinct values" in str(caught.value)


def test_missing_target_column_is_refused(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="target column 'nope' not found"):
        infer_config(read_table(table), "nope")


def test_no_usable_inputs() -> None:
    frame = pd.DataFrame({"id": range(10), "y": [0, 1] * 5})
    with pytest.raises(DataError, match="no usable input columns"):
        infer_config(read_table(frame), "y")


def test_target_and_column_type_helpers() -> None:
    assert infer_target_type(np.array([1.0, 1.0, np.nan])) is None
    assert infer_target_type(np.array([1.5, 2.5, 3.5])) == "number"
    assert infer_target_type(np.array([1.0, 2.0, 3.0])) == "category"
    assert infer_target_type(np.arange(50)) == "number"  # many whole values: a count, not classes
    assert infer_column_type(np.array([3, 1, 2]), "user_id")[0] is None
    assert infer_column_type(np.array([3.5, 1.5, 2.5]), "user_id")[0] == "number"
    assert infer_column_type(np.array(["a", "b", "a"], dtype=object), "c") == ("binary", "two values")
    assert infer_column_type(np.array(["a", "b", "c", "a"], dtype=object), "c") == ("category", "3 distinct values")
