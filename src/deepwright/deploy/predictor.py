"""`Predictor`: raw rows in, predictions out, from a bundle (or a freshly trained model).

Rows can be one dict, a list of dicts, a pandas DataFrame, an Arrow table or a data file; the answer has the
same shape: a dict, a list of dicts, or a DataFrame. Preprocessing is the bundle's own fitted state, so a
raw row is all a caller needs.

The tensor part runs on a *runtime* (`deepwright.deploy.runtimes`): eager PyTorch (`TorchRuntime`, the default)
or ONNX Runtime (`OnnxRuntime`); preprocessing and postprocessing are the same Python code for both.
"""

from __future__ import annotations

import itertools
import operator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from deepwright.config import Config
from deepwright.data.io import Table, read_table
from deepwright.deploy.bundle import Bundle
from deepwright.deploy.onnx import onnx_runtime
from deepwright.deploy.runtimes import Runtime, TorchRuntime
from deepwright.deploy.served import FeatureModel
from deepwright.errors import ConfigError, DataError
from deepwright.features.featureset import Columns, FeatureSet

__all__ = ["Predictor"]


class Predictor(FeatureModel):
    """A fitted feature set and model in evaluation mode, ready to predict raw rows: a table model (`ecd`), served
    by `/predict` (see `deepwright.deploy.served.ServedModel`).

    >>> predictor = Predictor.from_bundle("runs/quickstart/model")  # doctest: +SKIP
    >>> predictor.predict({"mean radius": 14.2, "mean texture": 19.1, ...})  # doctest: +SKIP
    {'diagnosis_prediction': 'benign', 'diagnosis_probability': 0.97}
    """

    can_predict = True  # rows in, one prediction per row out

    def __init__(
        self,
        config: Config,
        features: FeatureSet,
        model: torch.nn.Module,
        metrics: dict | None = None,
        *,
        bundle: Bundle | None = None,
    ) -> None:
        super().__init__(config, features, model, metrics, bundle=bundle)
        self.runtime: Runtime = TorchRuntime(self.model, config.trainer.eval_batch_size)

    @property
    def runtime_name(self) -> str:
        """What runs the tensor part: `torch` or `onnx`."""
        return self.runtime.name

    @classmethod
    def from_bundle(
        cls, path: str | Path, *, runtime: Literal["torch", "onnx"] = "torch", onnx_path: str | Path | None = None
    ) -> Predictor:
        """Load and verify a bundle directory written by `deepwright train` or `Pipeline.save`.

        With `runtime="onnx"`, the tensor part runs on ONNX Runtime: from `onnx_path`, else the bundle's
        `model.onnx` (written by `deepwright export`), else a graph exported now, in memory.
        """
        predictor = cls.read(path, "ecd", FeatureSet)
        if runtime == "onnx":
            predictor.runtime = onnx_runtime(predictor, onnx_path)
        elif runtime != "torch":
            raise ConfigError(f"runtime {runtime!r} is not a choice; choices: torch, onnx")
        return predictor

    def predict(self, rows: Any) -> Any:
        """Predict `rows`: a dict → a dict, a list of dicts → a list of dicts, anything tabular → a DataFrame."""
        if isinstance(rows, dict):
            return self._predict_records([rows])[0]
        if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
            return self._predict_records(rows)
        table = read_table(rows)
        index = rows.index if isinstance(rows, pd.DataFrame) else table.frame.index
        return pd.DataFrame(self.predict_columns(*self.table_columns(table)), index=index)

    def table_columns(self, table: Table) -> tuple[Columns, np.ndarray, str]:
        """The input columns of `table` with their row numbers and source, checking every input is present."""
        table.require_columns(self.features.input_names, "input")
        columns, row_numbers = self.features.columns_of(table.frame, table.base_dir, outputs=False)
        return columns, row_numbers, table.source

    def logits(self, columns: Columns, row_numbers: np.ndarray, source: str) -> dict[str, torch.Tensor]:
        """Raw input columns → the model's logits per output."""
        arrays = self.features.transform_inputs(columns, row_numbers=row_numbers, source=source)
        return self.runtime(arrays)

    def predict_columns(self, columns: Columns, row_numbers: np.ndarray, source: str) -> dict[str, np.ndarray]:
        """Raw input columns → result columns of every output (label, probabilities or value)."""
        logits = self.logits(columns, row_numbers, source)
        results: dict[str, np.ndarray] = {}
        for feature in self.features.outputs:
            results.update(feature.postprocess(logits[feature.name].numpy()))
        return results

    def _predict_records(self, rows: list[dict]) -> list[dict]:
        if not rows:
            return []
        results = self.predict_columns(*self.record_columns(rows))
        values = {name: array.tolist() for name, array in results.items()}
        return [dict(zip(values, row)) for row in zip(*values.values())]

    def record_columns(self, rows: list[dict]) -> tuple[Columns, np.ndarray, str]:
        """The input columns of a list of row dicts, with their row numbers (from 1) and source ('the request');
        a row lacking an input field is a `DataError` naming it."""
        names = self.features.input_names
        cells = np.empty(len(rows) * len(names), dtype=object)  # cell by cell: np.array would unpack bytes-like ones
        get = operator.itemgetter(*names)
        try:
            cells[:] = list(itertools.chain.from_iterable(map(get, rows))) if len(names) > 1 else list(map(get, rows))
        except KeyError:
            position, name = next((index, name) for index, row in enumerate(rows) for name in names if name not in row)
            raise DataError(
                "field is missing; every input column must be given (null for an empty value)",
                column=name,
                row=position + 1,
                source="the request",
            ) from None
        table = cells.reshape(len(rows), len(names))
        columns = {name: table[:, position] for position, name in enumerate(names)}
        return columns, np.arange(1, len(rows) + 1), "the request"
