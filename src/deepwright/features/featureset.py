"""`FeatureSet`: the preprocessing of every input and output column, fitted together, and the model they imply.

It turns raw columns into the arrays the model takes. Passthrough inputs (numbers, binaries) are stacked into
one float matrix under `PASSTHROUGH_KEY`; every other input keeps its own array under its name; outputs keep
theirs under their names. Any `ValueProblem` a feature raises becomes a `DataError` naming the source, the
original row number and the column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepwright.config import PASSTHROUGH_KEY, Config
from deepwright.data.media import resolve_paths
from deepwright.errors import DataError
from deepwright.features.base import Feature, ValueProblem
from deepwright.models.ecd import ECD, EncodedInput
from deepwright.registry import FEATURES

__all__ = ["Columns", "FeatureSet"]

# Raw column values by column name, each a 1-D numpy array of the same length.
Columns = Mapping[str, np.ndarray]


class FeatureSet:
    """The input and output features of a config, their fitted state, and the model built from them."""

    def __init__(self, config: Config, *, cache_dir: Path | None = None) -> None:
        self.config = config
        self.inputs: list[Feature] = [FEATURES.get(options.type)(options, "input") for options in config.input_features]
        self.outputs: list[Feature] = [
            FEATURES.get(options.type)(options, "output") for options in config.output_features
        ]
        for feature in self.inputs:
            feature.cache_dir = cache_dir  # where features that decode files keep what they decoded

    @property
    def input_names(self) -> list[str]:
        """The input columns, in config order."""
        return [feature.name for feature in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """The output columns, in config order."""
        return [feature.name for feature in self.outputs]

    # -- preprocessing -----------------------------------------------------------------------------------

    def columns_of(
        self, frame: pd.DataFrame, base_dir: Path | None, *, rows: np.ndarray | None = None, outputs: bool = True
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The raw columns of every feature (outputs too, unless `outputs` is False) at positions `rows` of
        `frame`, file paths resolved against `base_dir`; and the 1-based row numbers of those rows."""
        positions = slice(None) if rows is None else rows
        columns = {}
        for feature in [*self.inputs, *(self.outputs if outputs else [])]:
            values = frame[feature.name].to_numpy()[positions]
            columns[feature.name] = resolve_paths(values, base_dir) if feature.reads_files else values
        return columns, frame.index.to_numpy()[positions] + 1

    def fit(self, columns: Columns, *, row_numbers: np.ndarray, source: str) -> None:
        """Learn every feature's state from the training rows' raw values."""
        for feature in [*self.inputs, *self.outputs]:
            with _located(feature.name, row_numbers, source):
                feature.fit(columns[feature.name])

    def transform_inputs(self, columns: Columns, *, row_numbers: np.ndarray, source: str) -> dict[str, np.ndarray]:
        """Raw input columns → model input arrays (passthrough inputs stacked under `PASSTHROUGH_KEY`).

        Each feature type's `transform_many(features, columns)` transforms its features together first; whatever
        it leaves goes through each feature's own `transform`.
        """
        done = self._transform_together(columns)
        arrays: dict[str, np.ndarray] = {}
        stacked = []
        for feature in self.inputs:
            if feature.name in done:
                array = done[feature.name]
            else:
                with _located(feature.name, row_numbers, source):
                    array = feature.transform(columns[feature.name])
            feature.locate(array, row_numbers, source)  # a lazy column decodes (and may fail) later
            if feature.passthrough:
                stacked.append(array)
            else:
                arrays[feature.name] = array
        if stacked:
            arrays[PASSTHROUGH_KEY] = stacked[0] if len(stacked) == 1 else np.concatenate(stacked, axis=1)
        return arrays

    def _transform_together(self, columns: Columns) -> dict[str, np.ndarray]:
        groups: dict[type[Feature], list[Feature]] = {}
        for feature in self.inputs:
            groups.setdefault(type(feature), []).append(feature)
        done: dict[str, np.ndarray] = {}
        for kind, features in groups.items():
            done.update(kind.transform_many(features, columns))
        return done

    def transform_outputs(self, columns: Columns, *, row_numbers: np.ndarray, source: str) -> dict[str, np.ndarray]:
        """Raw output columns → target arrays, by output name."""
        arrays = {}
        for feature in self.outputs:
            with _located(feature.name, row_numbers, source):
                arrays[feature.name] = feature.transform(columns[feature.name])
        return arrays

    def state(self) -> dict[str, Any]:
        """Every feature's learned state, as JSON-able data (what `preprocessing.json` holds)."""
        return {
            "inputs": {feature.name: feature.state() for feature in self.inputs},
            "outputs": {feature.name: feature.state() for feature in self.outputs},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""
        for role, features in (("inputs", self.inputs), ("outputs", self.outputs)):
            for feature in features:
                feature.load_state(state[role][feature.name])

    # -- model -------------------------------------------------------------------------------------------

    def encoded_inputs(self) -> list[EncodedInput]:
        """(name, encoder, width) of every model input: the passthrough block (an identity) first when there is
        one, then each other input's encoder, in config order."""
        inputs: list[EncodedInput] = []
        passthrough_width = sum(feature.width() for feature in self.inputs if feature.passthrough)
        if passthrough_width:
            inputs.append((PASSTHROUGH_KEY, nn.Identity(), passthrough_width))
        for feature in self.inputs:
            if not feature.passthrough:
                inputs.append((feature.name, feature.build_encoder(), feature.width()))
        return inputs

    def build_model(self) -> ECD:
        """The ECD model for these (fitted) features and the config's combiner and initialiser."""
        heads = [(feature.name, feature.build_head) for feature in self.outputs]
        return ECD.from_options(self.encoded_inputs(), self.config.combiner, heads, self.config.initializer)

    def loss(self, logits: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of every output's loss on a batch."""
        total = None
        for feature in self.outputs:
            loss = feature.loss(logits[feature.name], batch[feature.name])
            weight = feature.options.weight
            loss = loss if weight == 1.0 else loss * weight
            total = loss if total is None else total + loss
        return total

    def metrics(self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, dict]:
        """Metrics of every output, {output name → {metric → value}}, plus the weighted loss under 'loss'."""
        results: dict[str, Any] = {"loss": float(self.loss(logits, targets))}
        for feature in self.outputs:
            results[feature.name] = feature.metrics(
                targets[feature.name].cpu().numpy(), logits[feature.name].float().cpu().numpy()
            )
        return results


@contextmanager
def _located(column: str, row_numbers: np.ndarray, source: str) -> Iterator[None]:
    """Turn a feature's `ValueProblem` into a `DataError` naming the source, row and column."""
    try:
        yield
    except ValueProblem as problem:
        row = None if problem.position is None else int(row_numbers[problem.position])
        raise DataError(problem.message, column=column, row=row, source=source) from None
