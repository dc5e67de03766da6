"""Forecast metrics (MAE, RMSE, MAPE, sMAPE) by hand, and the naive and seasonal-naive baselines."""

from __future__ import annotations

import numpy as np
import pytest

from deepwright.evaluation.forecast import forecast_metrics, mape, naive_forecast, seasonal_naive_forecast, smape
from deepwright.registry import METRICS


def test_percentage_errors_by_hand() -> None:
    truth, prediction = np.array([100.0, 50.0, 0.0]), np.array([90.0, 60.0, 0.0])
    assert mape(truth, prediction) == pytest.approx(100 * (0.1 + 0.2) / 2)  # the zero target is left out
    expected = 100 * (2 * 10 / 190 + 2 * 10 / 110 + 0) / 3
    assert smape(truth, prediction) == pytest.approx(expected)
    assert mape(np.zeros(3), np.ones(3)) is None
    assert METRICS.get("mape") is mape and METRICS.get("smape") is smape


def test_naive_and_seasonal_naive() -> None:
    series = np.arange(20.0)
    starts = np.array([10, 15])
    assert naive_forecast(series, starts, 3).tolist() == [[9.0] * 3, [14.0] * 3]
    seasonal = seasonal_naive_forecast(series, starts, 5, 4)
    assert seasonal.tolist() == [[6.0, 7.0, 8.0, 9.0, 6.0], [11.0, 12.0, 13.0, 14.0, 11.0]]  # only known values
    early = seasonal_naive_forecast(series, np.array([2]), 1, 4)
    assert np.isnan(early).all()


def test_forecast_metrics_beside_baselines_on_the_windows_they_define() -> None:
    truth = np.array([[10.0, 12.0], [14.0, 16.0]])
    prediction = truth + 1
    seasonal = np.array([[np.nan, np.nan], [13.0, 13.0]])
    metrics = forecast_metrics(truth, prediction, {"naive": truth - 2, "seasonal_naive": seasonal})
    assert metrics["mae"] == 1 and metrics["rmse"] == 1
    assert metrics["naive_mae"] == 2 and metrics["naive_rmse"] == 2
    assert metrics["seasonal_naive_mae"] == pytest.approx(2.0)  # the second window only: |14-13|, |16-13|
    assert set(metrics) == {
        f"{p}{m}" for p in ("", "naive_", "seasonal_naive_") for m in ("mae", "rmse", "mape", "smape")
    }
