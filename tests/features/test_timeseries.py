"""The `timeseries` feature: series read from lists and strings, bad values named by row and position, training
statistics, NaN padding that never changes an encoding, and series targets (a horizon vector)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from deepwright.config import FeatureConfig
from deepwright.features.base import ValueProblem
from deepwright.features.timeseries import TimeseriesFeature, parse_series


def feature(role: str = "input", **options: object) -> TimeseriesFeature:
    config = TypeAdapter(FeatureConfig).validate_python({"name": "load", "type": "timeseries", **options})
    return TimeseriesFeature(config, role)


def cells(*values: object) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1 2.5 -3", [[1.0], [2.5], [-3.0]]),
        ("1, 2 ,3", [[1.0], [2.0], [3.0]]),
        ("1;2", [[1.0], [2.0]]),
        ("[4, 5]", [[4.0], [5.0]]),
        ([6, 7.5], [[6.0], [7.5]]),
        ("[[1, 10], [2, 20]]", [[1.0, 10.0], [2.0, 20.0]]),
    ],
)
def test_cells_read_as_steps_by_channels(value: object, expected: list) -> None:
    assert parse_series(value).tolist() == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1 2 x", "position 3 of the series: 'x' is not a number"),
        ("1,,3", "position 2 of the series: '' is not a number"),
        ("[1, null]", "position 2 of the series: None is not a number"),
        ("1 inf", "position 2 of the series: 'inf' is not a number"),
        ("[[1, 2], [3]]", "ragged series: step 2 has 1 values, step 1 has 2"),
        ('[[1, 2], [3, "a"]]', "step 2, channel 2 of the series: 'a' is not a number"),
        ("[]", "series is empty"),
    ],
)
def test_bad_values_are_named_by_position(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        parse_series(value)


def test_bad_cells_name_their_row_position() -> None:
    series = feature()
    with pytest.raises(ValueProblem, match="position 2 of the series: 'b' is not a number") as caught:
        series.fit(cells("1 2", "3 4", "5 b"))
    assert caught.value.position == 2
    with pytest.raises(ValueProblem, match="series is missing") as caught:
        series.fit(cells("1 2", None))
    assert caught.value.position == 1
    series.fit(cells("[[1, 2]]", "[[3, 4]]"))
    with pytest.raises(ValueProblem, match="ragged series: 1 channels per step, the training series have 2"):
        series.transform(cells("[[1, 2]]", "5 6"))


def test_normalised_with_training_statistics_per_channel() -> None:
    series = feature()
    series.fit(cells("[[0, 100], [2, 300]]", "[[4, 200]]"))
    assert series.center_ == [2.0, 200.0]
    array = series.transform(cells("[[2, 200], [4, 300]]"))
    np.testing.assert_allclose(array[0], [[0.0, 0.0], [1.2247449, 1.2247449]], rtol=1e-6)
    minmax = feature(normalization="minmax")
    minmax.fit(cells("0 10"))
    np.testing.assert_allclose(minmax.transform(cells("5"))[0, :, 0], [0.5])


def test_padding_holds_nan_and_truncation_keeps_the_recent_steps() -> None:
    series = feature(max_length=3)
    series.fit(cells("1 2 3 4 5", "1 2"))
    assert series.length_ == 3
    array = series.transform(cells("1 2 3 4 5", "9"))
    assert array.shape == (2, 3, 1)
    np.testing.assert_allclose(series.transform(cells("3 4 5")), array[:1])  # left truncation: the last 3 steps
    assert np.isnan(array[1, 1:]).all() and not np.isnan(array[1, 0]).any()


@pytest.mark.parametrize(
    "encoder",
    [
        {"type": "rnn", "cell": "lstm", "dim": 4, "reduction": "mean"},
        {"type": "rnn", "cell": "rnn", "dim": 4, "layers": 2},
        {"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "feedforward_dim": 16},
    ],
    ids=["lstm", "rnn", "transformer"],
)
def test_padding_never_changes_an_encoding(encoder: dict) -> None:
    series = feature(encoder=encoder)
    series.fit(cells("1 2 3 4 5 6 7 8", "1 2"))
    torch.manual_seed(0)
    model = series.build_encoder().eval()
    with torch.no_grad():
        alone = model(torch.from_numpy(series.transform(cells("3 1 2"))))
        padded = model(torch.from_numpy(series.transform(cells("3 1 2", "1 2 3 4 5 6 7 8"))))
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(padded).all()


def test_series_target_is_a_horizon_vector() -> None:
    target = feature("output")
    target.fit(cells("1 2 3", "[4, 5, 6]", [7, 8, 9]))
    array = target.transform(cells("1 2 3", "7 8 9"))
    assert array.shape == (2, 3) and array.dtype == np.float32
    head = target.build_head(5)
    assert head(torch.zeros(2, 5)).shape == (2, 3)
    metrics = target.metrics(array, array + 1.0 / target.scale_[0])  # predictions 1 unit too high
    assert metrics["mae"] == pytest.approx(1.0) and metrics["rmse"] == pytest.approx(1.0)
    assert set(metrics) == {"mae", "rmse", "mape", "smape"}
    predictions = target.postprocess(array)["load_prediction"]
    assert predictions.tolist() == [pytest.approx([1, 2, 3]), pytest.approx([7, 8, 9])]


def test_a_target_of_another_length_is_ragged() -> None:
    target = feature("output")
    with pytest.raises(ValueProblem, match="target series has 2 steps; every target series must have 3") as caught:
        target.fit(cells("1 2 3", "4 5"))
    assert caught.value.position == 1
