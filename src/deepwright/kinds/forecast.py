"""The forecast kind (`model_type: forecast`): windows of a time series → the next `horizon` values, trained by
epochs; evaluated beside the naive and seasonal-naive baselines; predicted from the whole recent history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepwright.data.io import Table
from deepwright.errors import ConfigError
from deepwright.kinds.base import refuse
from deepwright.kinds.rows import RowModelKind

__all__ = ["ForecastKind"]


class ForecastKind(RowModelKind):
    """A series in time order, split in time and cut into windows."""

    name = "forecast"

    def prepare(self, config: Any, table: Table) -> Any:
        """Put the series in time order, split it in time and find every split's windows (`prepare_series`)."""
        from deepwright.features.forecast import prepare_series

        return prepare_series(config, table)

    def features(self, config: Any, cache_dir: Path) -> Any:
        """The `ForecastFeatures` of the series' columns."""
        from deepwright.features.forecast import ForecastFeatures

        return ForecastFeatures(config, cache_dir=cache_dir)

    def new_predictor(self, config: Any, features: Any, model: Any) -> Any:
        """A `Forecaster` over the fitted features and the trained model."""
        from deepwright.deploy.forecaster import Forecaster

        return Forecaster(config, features, model)

    def load(self, path: str | Path, *, runtime: str, onnx_path: str | Path | None) -> Any:
        """The bundle's `Forecaster` (torch only)."""
        from deepwright.deploy.forecaster import Forecaster

        if runtime != "torch":
            raise ConfigError(f"a forecast runs on torch only, not {runtime!r}")
        return Forecaster.from_bundle(path)

    def evaluate(self, predictor: Any, data: Any) -> dict[str, Any]:
        """Metrics over every window of the series in `data`, beside the baselines."""
        return predictor.evaluate(data)

    def predict_file(
        self, predictor: Any, data: Any, output: str | Path | None, *, chunk_rows: int, progress: bool
    ) -> int:
        """The forecast after the history in `data` (read whole), as CSV."""
        import sys

        from deepwright.data.io import atomic_path

        predictions = predictor.predict(data)
        if output is None:
            predictions.to_csv(sys.stdout, index=False)
        else:
            with atomic_path(output) as temporary:
                predictions.to_csv(temporary, index=False)
        return len(predictions)

    def export(self, predictor: Any, path: str | Path | None, *, quantize: str | None, data: Any) -> Any:
        """Refused: a forecast runs from its bundle."""
        return refuse("export covers table models; a forecast runs from its bundle (deepwright predict)")
