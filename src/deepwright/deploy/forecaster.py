"""`Forecaster`: a saved forecast (`model_type: forecast`) in use: recent history in, the next values out.

The history is a table of time steps holding the time column (when the config has one), every input column and
the outputs' own past values: a file, a DataFrame, an Arrow table or a list of row dicts. Its last `lookback`
steps are read; the answer has `horizon` rows, one per future step, with its time and each output's forecast
(`<output>_prediction`). `evaluate` measures every window of a series beside the naive and seasonal-naive
baselines of the same windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepwright.config import ForecastConfig
from deepwright.data.batches import to_tensors
from deepwright.data.clean import missing_mask
from deepwright.data.io import read_table
from deepwright.data.timeindex import index_times
from deepwright.data.windows import forecast_positions
from deepwright.deploy.served import FeatureModel
from deepwright.errors import DataError
from deepwright.features.forecast import ForecastFeatures
from deepwright.models.ecd import predict_logits

__all__ = ["Forecaster"]


class Forecaster(FeatureModel):
    """A fitted forecast: its step features and model in evaluation mode. It reads a history, not rows, so the
    server neither predicts nor generates with it (see `deepwright.deploy.served.ServedModel`).

    >>> forecaster = Forecaster.from_bundle("runs/airline/model")  # doctest: +SKIP
    >>> forecaster.predict("airline-passengers.csv")  # doctest: +SKIP
           Month  Passengers_prediction
    0 1961-01-01             446.1
    """

    # neither can_predict nor can_generate: a forecast reads a whole history, the server's /predict answers
    # row by row
    config: ForecastConfig
    features: ForecastFeatures

    @classmethod
    def from_bundle(cls, path: str | Path) -> Forecaster:
        """Load and verify a forecast bundle written by `deepwright train` or `Pipeline.save`."""
        return cls.read(path, "forecast", ForecastFeatures)

    @property
    def history_columns(self) -> list[str]:
        """The columns a history needs: the time column(s), the inputs and the outputs."""
        time_column = self.config.time_column
        times = [] if time_column is None else [time_column] if isinstance(time_column, str) else list(time_column)
        return [*times, *self.features.steps.input_names, *self.features.output_names]

    def predict(self, history: Any) -> Any:
        """The next `horizon` values of each output after the last step of `history` (a list of row dicts → a list
        of dicts; anything tabular → a DataFrame of `horizon` rows)."""
        records = isinstance(history, list) and all(isinstance(row, dict) for row in history)
        if isinstance(history, dict):
            raise DataError(
                f"a forecast reads a history of at least {self.config.lookback} rows, not one row; give a list of "
                "rows or a table",
                source="the request",
            )
        table = read_table(pd.DataFrame(history), name="the request") if records else read_table(history)
        table.require_columns(self.history_columns, "history")
        index = self._index(table.frame, table.source)
        lookback = self.config.lookback
        if len(index.frame) < lookback:
            raise DataError(
                f"the history has {len(index.frame)} time steps; the model reads the last {lookback}: give at "
                f"least {lookback} rows",
                source=table.source,
            )
        recent = index.frame.iloc[-lookback:]
        arrays = self.features.step_arrays(recent, table.base_dir, table.source)
        window = self.features.window_table(arrays, np.array([lookback]), baselines=False, targets=False)
        logits = predict_logits(self.model, to_tensors(window), self.config.trainer.eval_batch_size)
        time_name = self.config.time_column if isinstance(self.config.time_column, str) else "time"
        result = {"step" if self.config.time_column is None else time_name: index.future_times(self.config.horizon)}
        for feature in self.features.outputs:
            result[f"{feature.name}_prediction"] = self.features.in_data_units(feature, logits[feature.name])[0]
        frame = pd.DataFrame(result)
        return frame.to_dict("records") if records else frame

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics of every window of the series `data` with a value to forecast, beside the naive and
        seasonal-naive baselines of the same windows: {"loss", output → {metric}}."""
        table = read_table(data)
        table.require_columns(self.history_columns, "history")
        index = self._index(table.frame, table.source)
        config = self.config
        starts = np.arange(config.lookback, len(index.frame) - config.horizon + 1)
        empty = np.zeros(len(index.frame), dtype=bool)
        for name in self.features.output_names:
            empty |= missing_mask(index.frame[name].to_numpy())
        starts = starts[~empty[forecast_positions(starts, config.horizon)].any(axis=1)] if len(starts) else starts
        if len(starts) == 0:
            raise DataError(
                f"no window to evaluate: the series needs more than lookback + horizon = "
                f"{config.lookback + config.horizon} steps with values to forecast",
                source=table.source,
            )
        arrays = self.features.step_arrays(index.frame, table.base_dir, table.source)
        window = to_tensors(self.features.window_table(arrays, starts, baselines=True))
        logits = predict_logits(self.model, window, config.trainer.eval_batch_size)
        return self.features.metrics(logits, window)

    def _index(self, frame: pd.DataFrame, source: str) -> Any:
        config = self.config
        frequency = config.frequency or self.features.frequency_
        return index_times(frame, config.time_column, frequency, config.gaps, source)
