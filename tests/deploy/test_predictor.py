"""The Predictor: raw rows in the caller's shape (dict, list, DataFrame, Arrow, file) → predictions in that shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import deepwright as dp
from deepwright.deploy.predictor import Predictor
from deepwright.errors import DataError
from tests.helpers import INPUT_FEATURES, TARGET, Trained, make_frame, write_frame

RESULT_COLUMNS = [f"{TARGET}_prediction", f"{TARGET}_probability"]
ROW = {"age": 52.0, "city": "Lyon", "member": "yes", "income": 3100.0}


@pytest.fixture(scope="module")
def model(trained: Trained) -> dp.Pipeline:
    return dp.load(trained.result.bundle_dir)


@pytest.fixture
def rows() -> pd.DataFrame:
    return make_frame(12, seed=9).drop(columns=[TARGET])


def test_from_bundle(trained: Trained) -> None:
    predictor = Predictor.from_bundle(trained.result.bundle_dir)
    assert not predictor.model.training
    assert predictor.features.input_names == [feature["name"] for feature in INPUT_FEATURES]


def test_dict_in_dict_out(model: dp.Pipeline) -> None:
    prediction = model.predict(ROW)
    assert isinstance(prediction, dict)
    assert list(prediction) == RESULT_COLUMNS
    assert prediction[f"{TARGET}_prediction"] in ("high", "low")
    assert 0.0 <= prediction[f"{TARGET}_probability"] <= 1.0
    assert isinstance(prediction[f"{TARGET}_probability"], float)  # plain Python values, ready for JSON


def test_list_in_list_out(model: dp.Pipeline, rows: pd.DataFrame) -> None:
    records = rows.to_dict("records")
    predictions = model.predict(records)
    assert isinstance(predictions, list)
    assert len(predictions) == len(records)
    assert all(list(prediction) == RESULT_COLUMNS for prediction in predictions)
    assert model.predict([]) == []


def test_data_frame_in_data_frame_out(model: dp.Pipeline, rows: pd.DataFrame) -> None:
    predictions = model.predict(rows)
    assert isinstance(predictions, pd.DataFrame)
    assert list(predictions.columns) == RESULT_COLUMNS
    assert len(predictions) == len(rows)


def test_every_shape_gives_the_same_predictions(model: dp.Pipeline, rows: pd.DataFrame, tmp_path: Path) -> None:
    frame = model.predict(rows)
    records = pd.DataFrame(model.predict(rows.to_dict("records")))
    single = pd.DataFrame([model.predict(row) for row in rows.to_dict("records")])
    arrow = model.predict(pa.Table.from_pandas(rows, preserve_index=False))
    from_file = model.predict(write_frame(rows, tmp_path / "rows.csv"))
    from_parquet = model.predict(str(write_frame(rows, tmp_path / "rows.parquet")))
    for other in (records, single, arrow, from_file, from_parquet):
        assert other[f"{TARGET}_prediction"].tolist() == frame[f"{TARGET}_prediction"].tolist()
        assert np.allclose(other[f"{TARGET}_probability"], frame[f"{TARGET}_probability"], atol=1e-6)


def test_extra_columns_are_ignored(model: dp.Pipeline) -> None:
    assert model.predict({**ROW, "unrelated": "x", TARGET: "low"}) == model.predict(ROW)


def test_data_frame_predictions_keep_the_input_index(model: dp.Pipeline, rows: pd.DataFrame) -> None:
    shuffled = rows.sample(frac=1.0, random_state=0)
    predictions = model.predict(shuffled)
    assert predictions.index.equals(shuffled.index)


def test_an_empty_data_frame_gives_an_empty_result(model: dp.Pipeline, rows: pd.DataFrame) -> None:
    predictions = model.predict(rows.iloc[:0])
    assert isinstance(predictions, pd.DataFrame)
    assert len(predictions) == 0


def test_missing_input_field_is_a_data_error(model: dp.Pipeline) -> None:
    incomplete = {key: value for key, value in ROW.items() if key != "income"}
    with pytest.raises(DataError) as caught:
        model.predict([ROW, incomplete])
    assert (caught.value.column, caught.value.row) == ("income", 2)
    assert "missing" in str(caught.value)


def test_missing_input_column_is_a_data_error(model: dp.Pipeline, rows: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="input column 'city' not found"):
        model.predict(rows.drop(columns=["city"]))
    path = write_frame(rows.drop(columns=["city"]), tmp_path / "rows.csv")
    with pytest.raises(DataError) as caught:
        model.predict(path)
    assert str(caught.value).startswith(str(path))


def test_bad_value_names_the_request_row_and_column(model: dp.Pipeline) -> None:
    with pytest.raises(DataError) as caught:
        model.predict([ROW, ROW, {**ROW, "age": "old"}])
    assert str(caught.value).startswith("the request, row 3, column 'age'")


def test_unseen_category_value_is_predicted_like_any_unknown(model: dp.Pipeline) -> None:
    berlin = model.predict({**ROW, "city": "Berlin"})
    tokyo = model.predict({**ROW, "city": "Tokyo"})
    assert berlin[f"{TARGET}_prediction"] in ("high", "low")
    assert berlin == tokyo  # both fall into the unknown bucket


def test_empty_cells_are_filled(model: dp.Pipeline) -> None:
    prediction = model.predict({"age": None, "city": None, "member": "", "income": float("nan")})
    assert prediction[f"{TARGET}_prediction"] in ("high", "low")


def test_numbers_may_arrive_as_strings(model: dp.Pipeline) -> None:
    as_strings = {**ROW, "age": "52", "income": "3100.0"}
    assert model.predict(as_strings) == model.predict(ROW)


def test_category_output_gives_a_probability_per_class(tmp_path: Path) -> None:
    frame = make_frame(90, seed=2)
    frame["band"] = pd.cut(frame["age"], [-np.inf, 35, 45, np.inf], labels=["young", "middle", "older"]).astype(str)
    config = {
        "input_features": [{"name": "age", "type": "number"}],
        "output_features": [{"name": "band", "type": "category"}],
        "combiner": {"dims": [8]},
        "trainer": {"epochs": 2},
    }
    pipeline = dp.Pipeline.from_config(config)
    pipeline.fit(frame, output_dir=tmp_path, progress=False)
    prediction = pipeline.predict({"age": 30.0})
    assert set(prediction) == {
        "band_prediction",
        "band_probability",
        "band_probability_middle",
        "band_probability_older",
        "band_probability_young",
    }
    per_class = [prediction[f"band_probability_{label}"] for label in ("middle", "older", "young")]
    assert sum(per_class) == pytest.approx(1.0)
    assert prediction["band_probability"] == pytest.approx(max(per_class))
