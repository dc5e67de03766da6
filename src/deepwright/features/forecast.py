"""The preprocessing of a forecast (`model_type: forecast`): a series table → time steps → windows → tensors.

`prepare_series` puts the table in time order (checking its time index), splits the steps in time and finds
each split's windows (see `deepwright.data.windows`), leaving out windows with an empty value to forecast.
`ForecastFeatures` is the forecast's counterpart of `FeatureSet`: the step features (each input and output column
preprocessed as the number, binary and category types do, fitted on the training steps), the window tables, the
`WindowForecaster` they imply, its loss, and metrics beside the naive and seasonal-naive baselines of the same
windows. Both plug into the same training run as a table model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepwright.config import ForecastConfig
from deepwright.data.batches import to_tensors
from deepwright.data.clean import CleaningReport, missing_mask
from deepwright.data.io import Table
from deepwright.data.split import Split
from deepwright.data.timeindex import TimeIndex, index_times
from deepwright.data.windows import check_no_leakage, forecast_positions, lookback_positions, split_steps, window_starts
from deepwright.errors import DataError
from deepwright.evaluation.forecast import forecast_metrics, naive_forecast, seasonal_naive_forecast
from deepwright.features.featureset import FeatureSet
from deepwright.features.number import to_float
from deepwright.models.forecast import HISTORY_KEY, WindowForecaster

__all__ = ["BASELINE_PREFIX", "ForecastFeatures", "PreparedSeries", "StepArrays", "prepare_series"]

BASELINE_PREFIX = "__baseline__"  # window-table keys of the baselines: f"{BASELINE_PREFIX}{baseline}:{output}"
_FREQUENCY_KEY = "__frequency__"  # carries the series' frequency to `ForecastFeatures.fit`


@dataclass
class StepArrays:
    """Every step of a series preprocessed: the model inputs per step, the outputs normalised (NaN where empty),
    their past as the model reads it (empty steps carried forward), and the outputs in data units."""

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    history: np.ndarray  # (T, outputs)
    raw: dict[str, np.ndarray]


@dataclass
class PreparedSeries:
    """A series in time order, its step split, and each split's windows (`split`, by window start)."""

    index: TimeIndex
    steps: Split
    split: Split
    cleaning: CleaningReport
    source: str
    base_dir: Path | None = None
    _arrays: StepArrays | None = field(default=None, repr=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The table in time order (a filled gap is a row of empty values)."""
        return self.index.frame

    def columns(self, features: ForecastFeatures, split_name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The raw columns of the steps of `split_name` (to fit on) and their row numbers."""
        positions = getattr(self.steps, split_name)
        columns, row_numbers = features.steps.columns_of(self.frame, self.base_dir, rows=positions)
        columns[_FREQUENCY_KEY] = np.array([self.index.frequency], dtype=object)
        return columns, row_numbers

    def tensors(self, features: ForecastFeatures, split_name: str, source: str) -> dict[str, torch.Tensor]:
        """The window table of `split_name` (baselines included for validation and test); {} without windows."""
        starts = getattr(self.split, split_name)
        if len(starts) == 0:
            return {}
        if self._arrays is None:
            self._arrays = features.step_arrays(self.frame, self.base_dir, source)
        return to_tensors(features.window_table(self._arrays, starts, baselines=split_name != "train"))


def prepare_series(config: ForecastConfig, table: Table) -> PreparedSeries:
    """Order and check the time index of `table`, split its steps in time, and find every split's windows."""
    columns = [feature.name for feature in [*config.output_features, *config.input_features]]
    table.require_columns(config.output_names(), "output")
    table.require_columns(columns, "input")
    index = index_times(table.frame, config.time_column, config.frequency, config.gaps, table.source)
    frame, needed = index.frame, config.lookback + config.horizon
    if len(frame) < needed:
        raise DataError(
            f"the series has {len(frame)} time steps; a forecast needs at least lookback + horizon = {needed} "
            f"({config.lookback} + {config.horizon}): give a longer series or lower lookback",
            source=table.source,
        )
    split_options = config.preprocessing.split
    labels = frame[split_options.column].to_numpy() if split_options.column in frame.columns else None
    steps = split_steps(
        len(frame), split_options, labels=labels, row_numbers=frame.index.to_numpy() + 1, source=table.source
    )
    across = config.history_across_splits
    windows = window_starts(steps, config.lookback, config.horizon, history_across_splits=across)
    check_no_leakage(windows, steps, config.lookback, config.horizon, history_across_splits=across)
    empty = np.zeros(len(frame), dtype=bool)
    for name in config.output_names():
        empty |= missing_mask(frame[name].to_numpy())
    kept, dropped = {}, 0
    for name in ("train", "validation", "test"):
        starts = getattr(windows, name)
        complete = ~empty[forecast_positions(starts, config.horizon)].any(axis=1)
        kept[name], dropped = starts[complete], dropped + int((~complete).sum())
    if len(kept["train"]) == 0:
        raise DataError(
            f"no training window: the {len(steps.train)} training steps hold no lookback + horizon = {needed} steps "
            "with values to forecast; give more training steps or lower lookback",
            source=table.source,
        )
    reasons = {"windows with an empty value to forecast": dropped} if dropped else {}
    cleaning = CleaningReport(rows_in=len(table.frame), rows_out=len(frame), dropped=reasons)
    split = Split(kept["train"], kept["validation"], kept["test"], method=steps.method)
    return PreparedSeries(index, steps, split, cleaning, table.source, table.base_dir)


class ForecastFeatures:
    """The step features of a forecast, its window tables, model, loss and metrics (see the module docstring)."""

    def __init__(self, config: ForecastConfig, *, cache_dir: Path | None = None) -> None:
        self.config = config
        self.steps = FeatureSet(config, cache_dir=cache_dir)  # inputs and outputs, each read per step
        self.frequency_: str | None = None

    @property
    def inputs(self) -> list[Any]:
        """The input (covariate) features."""
        return self.steps.inputs

    @property
    def outputs(self) -> list[Any]:
        """The output features (number columns)."""
        return self.steps.outputs

    @property
    def output_names(self) -> list[str]:
        """The output columns, in config order."""
        return self.steps.output_names

    # -- preprocessing -----------------------------------------------------------------------------------

    def fit(self, columns: Mapping[str, np.ndarray], *, row_numbers: np.ndarray, source: str) -> None:
        """Learn every step feature's state from the training steps' raw values."""
        self.steps.fit(columns, row_numbers=row_numbers, source=source)
        self.frequency_ = columns[_FREQUENCY_KEY][0] if _FREQUENCY_KEY in columns else self.config.frequency

    def state(self) -> dict[str, Any]:
        """The fitted state as JSON-able data: the step features' and the series' frequency."""
        return {**self.steps.state(), "frequency": self.frequency_}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""
        self.steps.load_state(state)
        self.frequency_ = state.get("frequency")

    def step_arrays(self, frame: pd.DataFrame, base_dir: Path | None, source: str) -> StepArrays:
        """Every step of `frame` (in time order) preprocessed."""
        columns, row_numbers = self.steps.columns_of(frame, base_dir)
        inputs = self.steps.transform_inputs(columns, row_numbers=row_numbers, source=source)
        targets = self.steps.transform_outputs(columns, row_numbers=row_numbers, source=source)
        history = np.stack([_carried_forward(targets[name], 0.0) for name in self.output_names], axis=1)
        raw = {name: _carried_forward(to_float(columns[name]), np.nan) for name in self.output_names}
        return StepArrays(inputs, targets, history.astype(np.float32), raw)

    def window_table(
        self, arrays: StepArrays, starts: np.ndarray, *, baselines: bool, targets: bool = True
    ) -> dict[str, np.ndarray]:
        """The arrays of the windows starting at `starts`: every input at the lookback steps, the outputs' past
        (`HISTORY_KEY`), with `targets` each output's next `horizon` values, and with `baselines` the naive and
        seasonal-naive forecasts of those values (data units)."""
        config = self.config
        read = lookback_positions(starts, config.lookback)  # (N, L)
        forecast = forecast_positions(starts, config.horizon)  # (N, H)
        table = {name: array[read] for name, array in arrays.inputs.items()}
        table[HISTORY_KEY] = arrays.history[read]  # (N, L, O)
        for name in self.output_names if targets else ():
            table[name] = arrays.targets[name][forecast]
            if baselines:
                for baseline, values in self._baselines(arrays.raw[name], starts).items():
                    table[f"{BASELINE_PREFIX}{baseline}:{name}"] = values
        return table

    def _baselines(self, series: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
        horizon, period = self.config.horizon, self.config.seasonal_period
        forecasts = {"naive": naive_forecast(series, starts, horizon)}
        if period:
            forecasts["seasonal_naive"] = seasonal_naive_forecast(series, starts, horizon, period)
        return forecasts

    # -- model -------------------------------------------------------------------------------------------

    def build_model(self) -> WindowForecaster:
        """The forecaster for these (fitted) features and the config's encoder, combiner and initialiser; the step
        encoders are the inputs' own (category codes (B, L) → (B, L, width))."""
        return WindowForecaster.from_options(self.config, self.steps.encoded_inputs(), self.output_names)

    def loss(self, logits: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of every output's loss on a batch of windows."""
        return self.steps.loss(logits, batch)

    def metrics(self, logits: Mapping[str, torch.Tensor], table: Mapping[str, Any]) -> dict[str, Any]:
        """{"loss", output → MAE, RMSE, MAPE, sMAPE in data units, and the same for each baseline the table
        holds (`naive_rmse`…)}."""
        results: dict[str, Any] = {"loss": float(self.loss(logits, table))}
        for feature in self.outputs:
            truth = self.in_data_units(feature, table[feature.name])
            prediction = self.in_data_units(feature, logits[feature.name])
            prefix, suffix = BASELINE_PREFIX, f":{feature.name}"
            baselines = {
                key[len(prefix) : -len(suffix)]: np.asarray(
                    table[key].cpu() if isinstance(table[key], torch.Tensor) else table[key]
                )
                for key in table
                if key.startswith(prefix) and key.endswith(suffix)
            }
            results[feature.name] = forecast_metrics(truth, prediction, baselines)
        return results

    @staticmethod
    def in_data_units(feature: Any, values: Any) -> np.ndarray:
        """Normalised (N, horizon) values → data units, through the output feature's own postprocessing."""
        array = values.float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        return feature.postprocess(array)[f"{feature.name}_prediction"]


def _carried_forward(values: np.ndarray, before_first: float) -> np.ndarray:
    """`values` with each NaN replaced by the last value before it (`before_first` where there is none).

    >>> _carried_forward(np.array([np.nan, 1.0, np.nan, 3.0]), 0.0).tolist()
    [0.0, 1.0, 1.0, 3.0]
    """
    series = pd.Series(np.asarray(values, dtype=np.float64)).ffill().fillna(before_first)
    return series.to_numpy()
