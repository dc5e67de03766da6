"""Reporting: flat metric names for training, the printed table, JSON and Markdown written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from deepwright.evaluation.report import flatten_metrics, format_metrics_table, write_json, write_report

RESULTS = {
    "loss": 0.5,
    "y": {"accuracy": 0.9, "roc_auc": None, "confusion_matrix": {"labels": [0, 1], "counts": [[1, 0], [0, 1]]}},
}


def test_flatten_with_one_output_adds_short_names() -> None:
    assert flatten_metrics(RESULTS) == {
        "loss": 0.5,
        "y_accuracy": 0.9,
        "accuracy": 0.9,
        "y_roc_auc": None,
        "roc_auc": None,
    }


def test_flatten_with_two_outputs_keeps_prefixes_only() -> None:
    flat = flatten_metrics({"loss": 1.0, "a": {"accuracy": 0.5}, "b": {"rmse": 2.0}})
    assert flat == {"loss": 1.0, "a_accuracy": 0.5, "b_rmse": 2.0}


def test_metrics_table_has_a_row_per_metric_and_a_column_per_split() -> None:
    metrics = {"validation": RESULTS, "test": {**RESULTS, "y": {**RESULTS["y"], "accuracy": 12345.678}}}
    table = format_metrics_table(metrics, {"y": "binary"})
    assert "y (binary)" in table
    assert "validation" in table
    assert "test" in table
    assert "0.9000" in table
    assert "12,345.7" in table
    assert "—" in table  # an undefined metric
    assert "confusion_matrix" not in table


def test_write_json_and_report(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", RESULTS)
    assert json.loads((tmp_path / "m.json").read_text()) == RESULTS
    write_report(tmp_path / "report.md", title="run", summary=["a line"], table="TABLE", images=["plots/x.png"])
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# run\n")
    assert "- a line" in text
    assert "TABLE" in text
    assert "![x](plots/x.png)" in text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.json", "report.md"]
