"""The run directory: what `Pipeline.fit` writes under `runs/<name>/` and reads back to resume or export.

A run directory holds `config.yaml` (the resolved config), `run.json` (the data's source, the start time, the
cleaning and split facts), `preprocessing.json` (the fitted feature state), `log.jsonl` (one JSON line per epoch
or estimate), `checkpoints/last.pt`, `metrics.json`, `plots/`, `report.md` and the bundle `model/`. Every model
kind writes the same layout with the functions here.
"""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepwright.config import dump_config
from deepwright.data.clean import CleaningReport
from deepwright.errors import DataError

__all__ = [
    "TrainResult",
    "new_run_dir",
    "read_run_json",
    "write_run_report",
    "write_run_start",
]


@dataclass
class TrainResult:
    """What a training run produced and where it put it."""

    source: str
    run_dir: Path
    bundle_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    cleaning: CleaningReport
    split_sizes: dict[str, int]
    best_epoch: int | None
    stopped_early: bool
    seconds: float
    plots: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # set by runs that describe themselves (language models)

    def summary_lines(self) -> list[str]:
        """What the run did, in a few lines: data and cleaning, split sizes, epochs and time (or the run's own
        `summary` when it wrote one)."""
        if self.summary:
            return self.summary
        lines = [f"data: {self.source} — {self.cleaning.summary()}"]
        lines.append("split: " + ", ".join(f"{name} {count}" for name, count in self.split_sizes.items()))
        epochs = len(self.history)
        stop = f", stopped early; best epoch {self.best_epoch}" if self.stopped_early else ""
        lines.append(f"trained {epochs} epoch{'' if epochs == 1 else 's'} in {self.seconds:.1f} s{stop}")
        return lines


def new_run_dir(output_dir: Path, name: str) -> Path:
    """`output_dir/name`, or `name-2`, `name-3`… when taken; created empty."""
    output_dir.mkdir(parents=True, exist_ok=True)
    candidate, number = output_dir / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
            candidate = output_dir / f"{name}-{number}"


def read_run_json(run_dir: Path, name: str) -> Any:
    """A JSON file of a run directory (run.json, preprocessing.json…), or a `DataError` if it is not a run."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise DataError(f"not found; {run_dir} is not a run directory written by 'deepwright train'", source=str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def write_run_start(run_dir: Path, config: Any, preprocessing: dict, source: str, facts: dict[str, Any]) -> None:
    """What a run records before training: the resolved config, the fitted preprocessing state, and `run.json`
    (the data's source, the start time, the Python version and the given `facts`: cleaning, split sizes…)."""
    from deepwright.evaluation.report import write_json

    (run_dir / "config.yaml").write_text(yaml.safe_dump(dump_config(config), sort_keys=False), encoding="utf-8")
    write_json(run_dir / "preprocessing.json", preprocessing)
    if Path(source).exists():
        source = str(Path(source).resolve())
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(
        run_dir / "run.json",
        {"data": source, "started": started, **facts, "python": platform.python_version()},
    )


def write_run_report(result: TrainResult, output_types: dict[str, str], *, title: str) -> None:
    """`report.md` of a finished run: its summary, the metrics table and the plots (nothing without metrics)."""
    from deepwright.evaluation.report import format_metrics_table, write_report

    if not result.metrics:
        return
    write_report(
        result.run_dir / "report.md",
        title=f"{title} {result.run_dir.name}",
        summary=result.summary_lines(),
        table=format_metrics_table(result.metrics, output_types),
        images=[plot.relative_to(result.run_dir).as_posix() for plot in result.plots],
    )
