"""Number inputs transformed together as one block give exactly what each column's own transform gives."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from deepwright.config import FeatureConfig
from deepwright.features.number import NumberFeature


def fitted(name: str, normalization: str, values: list, **options: object) -> NumberFeature:
    config = TypeAdapter(FeatureConfig).validate_python(
        {"name": name, "type": "number", "normalization": normalization, **options}
    )
    feature = NumberFeature(config, "input")
    feature.fit(np.array(values, dtype=object))
    return feature


@pytest.fixture
def features() -> list[NumberFeature]:
    train = [1.0, 5.0, 2.5, 300.0, 0.0, 7.0]
    return [fitted(f"x{index}", kind, train) for index, kind in enumerate(("zscore", "minmax", "log", "none"))]


def test_block_equals_each_column(features: list[NumberFeature]) -> None:
    columns = {feature.name: np.array([3, "4.5", 1e4], dtype=object) for feature in features}
    together = NumberFeature.transform_many(features, columns)
    assert set(together) == {feature.name for feature in features}
    for feature in features:
        expected = feature.transform(columns[feature.name])
        assert together[feature.name].dtype == expected.dtype
        assert np.array_equal(together[feature.name], expected)


@pytest.mark.parametrize("bad", [None, "", "abc", float("inf")])
def test_block_leaves_anything_unusual_to_the_columns(features: list[NumberFeature], bad: object) -> None:
    columns = {feature.name: np.array([1.0, 2.0], dtype=object) for feature in features}
    columns["x1"] = np.array([1.0, bad], dtype=object)
    assert NumberFeature.transform_many(features, columns) == {}


def test_indicator_columns_are_left_out() -> None:
    with_indicator = fitted("a", "zscore", [1.0, 2.0, None], missing={"indicator": True})
    plain = fitted("b", "zscore", [1.0, 2.0, 3.0])
    columns = {"a": np.array([1.0]), "b": np.array([2.0])}
    assert set(NumberFeature.transform_many([with_indicator, plain], columns)) == {"b"}
