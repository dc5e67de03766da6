"""Datasets that ship inside installed packages (scikit-learn's bundled tables): nothing is downloaded.

>>> frame, target = load_dataset("iris")
>>> frame.shape, target
((150, 5), 'species')
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from deepwright.errors import DataError

__all__ = ["DATASETS", "BundledDataset", "load_dataset"]


@dataclass(frozen=True)
class BundledDataset:
    """A table bundled with scikit-learn: the loader's name, the target column we give it, and its labels."""

    loader: str
    target: str
    description: str
    label_names: bool  # replace class indices by scikit-learn's class names


DATASETS = {
    "breast_cancer": BundledDataset(
        "load_breast_cancer", "diagnosis", "569 tumours × 30 measurements, benign or malignant", True
    ),
    "iris": BundledDataset("load_iris", "species", "150 flowers × 4 measurements, 3 species", True),
    "wine": BundledDataset("load_wine", "cultivar", "178 wines × 13 chemical measurements, 3 cultivars", True),
    "digits": BundledDataset("load_digits", "digit", "1,797 handwritten digits as 8×8 = 64 pixel columns", False),
    "diabetes": BundledDataset(
        "load_diabetes",
        "progression",
        "442 patients × 10 measurements, disease progression (regression)",
        False,
    ),
}


def load_dataset(name: str) -> tuple[pd.DataFrame, str]:
    """The bundled table `name` as a DataFrame with its target column last, and the target's name."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    import sklearn.datasets

    dataset = DATASETS[name]
    bunch = getattr(sklearn.datasets, dataset.loader)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": dataset.target})
    if dataset.label_names:
        frame[dataset.target] = pd.Series(bunch.target_names[bunch.target.to_numpy()], index=frame.index)
    if name == "digits":
        frame[dataset.target] = frame[dataset.target].astype("int64")
    return frame, dataset.target
