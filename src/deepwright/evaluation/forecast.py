"""Forecast metrics and the baselines every forecast is reported beside.

MAE, RMSE, MAPE and sMAPE (registered in `METRICS`, in the data's own units), and two baselines computed on the
same windows: *naive* (every future step is the last observed value, i.e. persistence) and *seasonal naive*
(each future step is the value one season earlier). `forecast_metrics` reports the model's four metrics and each
baseline's as `naive_<metric>` and `seasonal_naive_<metric>`.

    MAPE  = 100 · mean(|y − ŷ| / |y|)               over the steps where y ≠ 0 (None when there are none)
    sMAPE = 100 · mean(2 |y − ŷ| / (|y| + |ŷ|))     a step where y = ŷ = 0 counts 0
"""

from __future__ import annotations

import numpy as np

from deepwright.registry import METRICS

__all__ = ["FORECAST_METRICS", "forecast_metrics", "mape", "naive_forecast", "seasonal_naive_forecast", "smape"]

FORECAST_METRICS = ("mae", "rmse", "mape", "smape")


@METRICS.register("mape")
def mape(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None = None) -> float | None:
    """Mean absolute percentage error (%), over the targets that are not zero; None when all are zero.

    >>> mape(np.array([100.0, 0.0, 50.0]), np.array([110.0, 5.0, 50.0]))
    5.0
    """
    target, prediction = np.asarray(target, dtype=np.float64), np.asarray(prediction, dtype=np.float64)
    nonzero = target != 0
    if not nonzero.any():
        return None
    return float(100 * np.mean(np.abs(target[nonzero] - prediction[nonzero]) / np.abs(target[nonzero])))


@METRICS.register("smape")
def smape(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None = None) -> float:
    """Symmetric mean absolute percentage error (%, from 0 to 200).

    >>> round(smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])), 3)
    33.333
    """
    target, prediction = np.asarray(target, dtype=np.float64), np.asarray(prediction, dtype=np.float64)
    denominator = np.abs(target) + np.abs(prediction)
    ratios = np.divide(
        2 * np.abs(target - prediction), denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(100 * np.mean(ratios))


def naive_forecast(series: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """Persistence: for each window whose first forecast step is `starts[i]`, the value at `starts[i] - 1`
    repeated `horizon` times, (N, horizon).

    >>> naive_forecast(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2, 3]), 2).tolist()
    [[2.0, 2.0], [3.0, 3.0]]
    """
    return np.repeat(series[starts - 1][:, None], horizon, axis=1)


def seasonal_naive_forecast(series: np.ndarray, starts: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Seasonal naive: step t + h takes the value of the same step one season earlier that is already known,
    series[t + h − period · ceil((h + 1) / period)], (N, horizon); NaN where that lies before the series.

    >>> seasonal_naive_forecast(np.arange(10.0), np.array([6]), 3, 4).tolist()
    [[2.0, 3.0, 4.0]]
    """
    steps = np.arange(horizon)
    back = period * np.ceil((steps + 1) / period).astype(np.int64)  # (horizon,)
    positions = starts[:, None] + steps[None, :] - back[None, :]  # (N, horizon)
    values = series[np.clip(positions, 0, None)].astype(np.float64)
    values[positions < 0] = np.nan
    return values


def forecast_metrics(
    truth: np.ndarray, prediction: np.ndarray, baselines: dict[str, np.ndarray] | None = None
) -> dict[str, float | None]:
    """MAE, RMSE, MAPE and sMAPE of `prediction` against `truth` (same shape, data units), then the same four for
    each baseline as `<baseline>_<metric>`, on the windows where the baseline is defined (not NaN).

    >>> forecast_metrics(np.array([[2.0], [4.0]]), np.array([[2.0], [2.0]]), {"naive": np.array([[1.0], [2.0]])})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'mae': 1.0, 'rmse': 1.4142135623730951, 'mape': 25.0, 'smape': 33.33333333333333,
     'naive_mae': 1.5, 'naive_rmse': 1.5811388300841898, 'naive_mape': 50.0, 'naive_smape': 66.66666666666666}
    """
    truth, prediction = np.asarray(truth, dtype=np.float64), np.asarray(prediction, dtype=np.float64)
    results = {name: METRICS.get(name)(truth.ravel(), prediction.ravel(), None) for name in FORECAST_METRICS}
    for baseline, values in (baselines or {}).items():
        known = ~np.isnan(values).reshape(len(values), -1).any(axis=1)
        for name in FORECAST_METRICS:
            score = METRICS.get(name)(truth[known].ravel(), values[known].ravel(), None) if known.any() else None
            results[f"{baseline}_{name}"] = score
    return results
