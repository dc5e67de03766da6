"""Bundled datasets: scikit-learn's tables, target last, class names as labels, nothing downloaded."""

from __future__ import annotations

import pytest

from deepwright.datasets import DATASETS, load_dataset
from deepwright.errors import DataError


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("iris", (150, 5), {"setosa", "versicolor", "virginica"}),
        ("breast_cancer", (569, 31), {"benign", "malignant"}),
        ("wine", (178, 14), None),
        ("digits", (1797, 65), set(range(10))),
        ("diabetes", (442, 11), None),
    ],
)
def test_load_dataset(name: str, shape: tuple[int, int], classes: set | None) -> None:
    frame, target = load_dataset(name)
    assert target == DATASETS[name].target
    assert frame.shape == shape
    assert frame.columns[-1] == target
    assert not frame[target].isna().any()
    if classes is not None:
        assert set(frame[target]) == classes


def test_unknown_dataset_lists_the_choices() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("titanic")
    for name in DATASETS:
        assert name in str(caught.value)
