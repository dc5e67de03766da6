"""Reporting metrics: the printed table, `metrics.json`, the flat names training uses, and `report.md`.

Metrics are nested as {split → {"loss": value, output → {metric → value}}}; a confusion matrix sits beside
the scalar metrics as {"labels": [...], "counts": [[...]]}.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from deepwright.data.io import atomic_path

__all__ = ["distinct_metrics", "flatten_metrics", "format_metrics_table", "write_json", "write_report"]


def flatten_metrics(results: dict[str, Any]) -> dict[str, float]:
    """{"loss", output → {metric}} → {"loss", "<output>_<metric>"}; with one output also plain "<metric>".

    >>> flatten_metrics({"loss": 0.5, "y": {"accuracy": 0.9, "confusion_matrix": {}}})
    {'loss': 0.5, 'y_accuracy': 0.9, 'accuracy': 0.9}
    """
    flat = {"loss": results["loss"]}
    outputs = [name for name in results if name != "loss"]
    for output in outputs:
        for metric, value in results[output].items():
            if isinstance(value, (int, float)) or value is None:
                flat[f"{output}_{metric}"] = value
                if len(outputs) == 1:
                    flat[metric] = value
    return flat


def distinct_metrics(record: dict[str, Any], prefix: str = "val_") -> list[str]:
    """The scalar metric names of a log record under `prefix`, without the output-named duplicates that
    `flatten_metrics` adds for a single output (keeps 'val_accuracy', drops 'val_label_accuracy').

    >>> distinct_metrics({"val_loss": 0.1, "val_y_accuracy": 0.9, "val_accuracy": 0.9, "lr": 0.1})
    ['val_loss', 'val_accuracy']
    """
    names = [key for key, value in record.items() if key.startswith(prefix) and isinstance(value, float)]
    return [name for name in names if not any(other != name and name.endswith(other[3:]) for other in names)]


def format_metrics_table(metrics: dict[str, dict[str, Any]], output_types: dict[str, str]) -> str:
    """A plain-text table per output: one row per metric, one column per split."""
    from rich.console import Console
    from rich.table import Table

    splits = list(metrics)
    console = Console(width=120, file=io.StringIO(), color_system=None)
    for output, kind in output_types.items():
        table = Table(title=f"{output} ({kind})", title_justify="left")
        table.add_column("metric")
        for split in splits:
            table.add_column(split, justify="right")
        names = [name for name, value in metrics[splits[0]][output].items() if not isinstance(value, dict)]
        for name in names:
            table.add_row(name, *(_format_value(metrics[split][output].get(name)) for split in splits))
        console.print(table)
    return console.file.getvalue().rstrip()


def _format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def write_report(path: Path, *, title: str, summary: list[str], table: str, images: list[str]) -> None:
    """A short Markdown report of a run: what was trained on, the metrics table, and the plots."""
    lines = [f"# {title}", "", *(f"- {line}" for line in summary), "", "```", table, "```", ""]
    lines += [f"![{Path(image).stem}]({image})" for image in images]
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
