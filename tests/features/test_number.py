"""The number feature: scaling, missing-value fills, bad values, and a regression output in its own units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from deepwright.config import NumberFeatureConfig
from deepwright.features.base import ValueProblem
from deepwright.features.number import NumberFeature, to_float

TRAIN = np.array([1.0, 2.0, 3.0, 4.0, 10.0])


def number(role: str = "input", **options: Any) -> NumberFeature:
    return NumberFeature(NumberFeatureConfig(name="x", type="number", **options), role)


def fitted(values: np.ndarray = TRAIN, role: str = "input", **options: Any) -> NumberFeature:
    feature = number(role, **options)
    feature.fit(values)
    return feature


def test_zscore_uses_training_mean_and_std() -> None:
    feature = fitted()
    out = feature.transform(TRAIN)
    assert out.shape == (5, 1)
    assert out.dtype == np.float32
    assert out.mean() == pytest.approx(0.0, abs=1e-6)
    assert out.std() == pytest.approx(1.0, abs=1e-6)
    later = feature.transform(np.array([4.0]))
    assert later[0, 0] == pytest.approx((4.0 - TRAIN.mean()) / TRAIN.std(), rel=1e-6)


def test_minmax_maps_the_training_range_to_zero_one() -> None:
    feature = fitted(normalization="minmax")
    out = feature.transform(TRAIN)[:, 0]
    assert out.min() == pytest.approx(0.0)
    assert out.max() == pytest.approx(1.0)
    assert feature.transform(np.array([5.5]))[0, 0] == pytest.approx(0.5)


def test_log_is_signed_log1p_then_zscore() -> None:
    values = np.array([0.0, 9.0, 99.0, 999.0])
    feature = fitted(values, normalization="log")
    shaped = np.log1p(values)
    expected = (shaped - shaped.mean()) / shaped.std()
    assert np.allclose(feature.transform(values)[:, 0], expected, atol=1e-6)
    negative = feature.transform(np.array([-9.0]))[0, 0]
    assert negative == pytest.approx((-np.log1p(9.0) - shaped.mean()) / shaped.std(), rel=1e-5)


def test_none_leaves_values_unchanged() -> None:
    feature = fitted(normalization="none")
    assert np.array_equal(feature.transform(TRAIN)[:, 0], TRAIN.astype(np.float32))


def test_constant_column_does_not_divide_by_zero() -> None:
    feature = fitted(np.array([5.0, 5.0, 5.0]))
    assert np.array_equal(feature.transform(np.array([5.0, 6.0]))[:, 0], np.array([0.0, 1.0], dtype=np.float32))


@pytest.mark.parametrize(
    ("options", "fill"),
    [
        ({}, 4.0),  # the default is the mean
        ({"missing": {"strategy": "mean"}}, 4.0),
        ({"missing": {"strategy": "median"}}, 3.5),
        ({"missing": {"strategy": "most_frequent"}}, 2.0),
        ({"missing": {"strategy": "constant", "fill_value": -1}}, -1.0),
    ],
)
def test_missing_fill(options: dict, fill: float) -> None:
    values = np.array([0.0, 2.0, 2.0, np.nan, 5.0, 6.0, 9.0], dtype=object)  # mean 4, median 3.5, mode 2
    feature = fitted(values, normalization="none", **options)
    out = feature.transform(np.array([None, np.nan, "", 7.0], dtype=object))[:, 0]
    assert out.tolist() == [fill, fill, fill, 7.0]


def test_fill_is_learned_from_training_values_only() -> None:
    feature = fitted(np.array([2.0, 4.0]), normalization="none")
    assert feature.transform(np.array([np.nan, 1000.0]))[0, 0] == 3.0


def test_missing_indicator_adds_a_column() -> None:
    feature = fitted(missing={"indicator": True}, normalization="none")
    out = feature.transform(np.array([1.0, np.nan, 3.0]))
    assert out.shape == (3, 2)
    assert feature.width() == 2
    assert out[:, 1].tolist() == [0.0, 1.0, 0.0]
    assert out[1, 0] == pytest.approx(TRAIN.mean())


def test_missing_with_strategy_error() -> None:
    feature = fitted(missing={"strategy": "error"})
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array([1.0, 2.0, np.nan]))
    assert caught.value.position == 2


def test_numeric_strings_are_numbers() -> None:
    feature = fitted(normalization="none")
    assert feature.transform(np.array(["1.5", " 2 ", "-3e2"], dtype=object))[:, 0].tolist() == [1.5, 2.0, -300.0]


@pytest.mark.parametrize("bad", ["abc", "1,5", "12 kg"])
def test_non_numeric_value_is_a_problem_at_its_position(bad: str) -> None:
    feature = fitted()
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array(["1", "2", bad, "4"], dtype=object))
    assert caught.value.position == 2
    assert repr(bad) in caught.value.message
    assert "category" in caught.value.message  # the fix: declare the column as category


def test_non_numeric_value_in_training_is_a_problem() -> None:
    with pytest.raises(ValueProblem) as caught:
        number().fit(np.array([1, "two", 3], dtype=object))
    assert caught.value.position == 1


@pytest.mark.parametrize("infinite", [np.inf, -np.inf, "inf", "-Infinity"])
def test_infinite_value_is_an_error(infinite: object) -> None:
    feature = fitted()
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array([1.0, 2.0, infinite], dtype=object))
    assert caught.value.position == 2
    assert "not finite" in caught.value.message
    with pytest.raises(ValueProblem):
        number().fit(np.array([infinite, 1.0], dtype=object))


def test_every_value_missing_in_training() -> None:
    with pytest.raises(ValueProblem, match="every training value is missing"):
        number().fit(np.array([None, None], dtype=object))


def test_output_is_trained_in_z_units_and_reported_in_data_units() -> None:
    targets = np.array([1000.0, 2000.0, 3000.0, 4000.0])
    feature = fitted(targets, role="output")
    z = feature.transform(targets)
    assert z.dtype == np.float32
    assert z.mean() == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(feature.postprocess(z)["x_prediction"], targets, rtol=1e-5)
    metrics = feature.metrics(z, z + 1.0)  # one standard deviation off everywhere
    assert metrics["rmse"] == pytest.approx(targets.std(), rel=1e-5)
    assert metrics["mae"] == pytest.approx(targets.std(), rel=1e-5)
    assert set(metrics) == {"rmse", "mae", "r2"}


def test_huber_loss_option() -> None:
    import torch

    feature = fitted(role="output", loss="huber")
    logits, target = torch.tensor([0.0, 10.0]), torch.tensor([0.0, 0.0])
    assert float(feature.loss(logits, target)) == pytest.approx((0 + (10 - 0.5)) / 2)


def test_to_float() -> None:
    assert np.isnan(to_float(np.array([None], dtype=object))[0])
    assert to_float(np.array([True, False])).tolist() == [1.0, 0.0]
    converted = to_float(np.array(["1.5", None, 2, " "], dtype=object))
    assert converted[[0, 2]].tolist() == [1.5, 2.0]
    assert np.isnan(converted[[1, 3]]).all()
