"""The run directory: what `Pipeline.fit` writes under `runs/<name>/` and reads back to resume or export.

A run directory holds `config.yaml` (the resolved config), `run.json` (the data's source, the start time, the
cleaning and split facts, and the record that repeats the run: the config's and the data's sha256, the seed, the
library versions, the world size, the machine and the git commit), `preprocessing.json` (the fitted feature
state), `log.jsonl` (one JSON line per epoch or estimate), `checkpoints/last.pt`, `metrics.json`, `plots/`,
`report.md` and the bundle `model/`. Every model kind writes the same layout with the functions here.

`check_resume_data` refuses to resume a run on data other than its own; `plan_repeat` says what it takes to run
a recorded run again and what differs now.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepwright.config import dump_config
from deepwright.data.clean import CleaningReport
from deepwright.data.fingerprint import data_difference, file_sha256, fingerprint
from deepwright.errors import DataError, DeepwrightWarning
from deepwright.reproducibility import environment, environment_differences, git_record

__all__ = [
    "RepeatPlan",
    "TrainResult",
    "check_resume_data",
    "config_file",
    "new_run_dir",
    "plan_repeat",
    "read_run_json",
    "write_run_report",
    "write_run_start",
]

# The config file the runs started in this context come from (see `config_file`); None: not a file.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("deepwright_config_file", default=None)


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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot be read as JSON ({error}); the run directory is damaged", source=str(path)) from None


@contextmanager
def config_file(path: str | Path | None) -> Iterator[None]:
    """Within this block, the runs started record `path` as the config file they come from, and the git commit
    of its folder (outside one, the git commit of the current folder).

    >>> with config_file("project/config.yaml"):  # doctest: +SKIP
    ...     Pipeline.from_config("project/config.yaml").fit("data.csv")
    """
    token = _CONFIG_FILE.set(None if path is None else Path(path).resolve())
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def write_run_start(run_dir: Path, config: Any, preprocessing: dict, source: str, facts: dict[str, Any]) -> None:
    """What a run records before training: the resolved config, the fitted preprocessing state, and `run.json`:
    the data's source, the start time, the given `facts` (cleaning, split sizes…), the Python version, and what
    it takes to repeat the run — "config" (file, sha256, source), "seed", "inputs" (the data's fingerprint, see
    `deepwright.data.fingerprint`), "versions", "distributed", "machine" and, when the config's folder is in a
    git work tree, "git" (commit, dirty, root)."""
    from deepwright.evaluation.report import write_json

    config_text = yaml.safe_dump(dump_config(config), sort_keys=False)
    (run_dir / "config.yaml").write_text(config_text, encoding="utf-8")
    write_json(run_dir / "preprocessing.json", preprocessing)
    inputs = fingerprint(source)
    if Path(source).exists():
        source = str(Path(source).resolve())
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    origin = _CONFIG_FILE.get()
    record = {
        "data": source,
        "started": started,
        **facts,
        "python": platform.python_version(),
        "config": {
            "file": "config.yaml",
            "sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
            "source": None if origin is None else str(origin),
        },
        "seed": config.trainer.seed,
        "inputs": inputs,
        **environment(),
    }
    git = git_record(origin.parent if origin is not None else Path.cwd())
    if git is not None:
        record["git"] = git
    write_json(run_dir / "run.json", record)


def check_resume_data(run_dir: Path, data: str | None, *, allow_other_data: bool = False) -> str:
    """The data to resume the run at `run_dir` on: `data`, or the run's own when None. Either must hash as the
    run recorded; otherwise a `DataError` naming both (with `allow_other_data`, a `DeepwrightWarning`). A run
    whose record holds no digest (an older deepwright, an in-memory table) is not checked."""
    record = _run_record(Path(run_dir))
    recorded = record.get("inputs")
    chosen = data or record["data"]
    current = fingerprint(chosen)
    if recorded is None or current is None or current["sha256"] == recorded["sha256"]:
        return chosen
    difference = data_difference(recorded, current)
    if data is None:
        problem = f"the data of run {run_dir} ({chosen}) changed since the run started: {difference}"
    else:
        problem = f"--data {data} is not the data of run {run_dir} ({recorded['path']}): {difference}"
    if allow_other_data:
        warnings.warn(f"resuming on other data (--allow-other-data): {problem}", DeepwrightWarning, stacklevel=2)
        return chosen
    raise DataError(f"{problem}; resume on the run's data, or give --allow-other-data")


@dataclass
class RepeatPlan:
    """What `deepwright train --repeat RUN` starts from: the run's config file and data, the config file whose
    folder's git commit the new run records, and one line per thing that differs from the run's record now."""

    run_dir: Path
    config: Path
    data: str
    config_source: Path
    differences: list[str]


def plan_repeat(run_dir: Path, data: str | None = None) -> RepeatPlan:
    """How to run the run at `run_dir` again (its config.yaml, on `data` or its recorded data), and what differs
    from its record: the config file, the data's digest, a library or Python version, the world size, the
    machine, the git commit. A run directory without a readable run.json or config.yaml is a `DataError`."""
    run_dir = Path(run_dir)
    record = _run_record(run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise DataError(f"not found; {run_dir} is not a complete run directory", source=str(config))
    chosen = data or record["data"]
    recorded_config = record.get("config") or {}
    lines = []
    if recorded_config.get("sha256") not in (None, file_sha256(config)):
        lines.append(f"{config} changed since the run started (its sha256 differs from the record)")
    lines += _data_differences(record, chosen)
    if "versions" not in record:
        lines.append("run.json records no versions or machine (written by an older deepwright)")
    source = Path(recorded_config.get("source") or config)
    folder = source.parent if source.parent.is_dir() else run_dir
    lines += environment_differences(record, {**environment(), "git": git_record(folder)})
    return RepeatPlan(run_dir, config, chosen, source if source.is_file() else config, lines)


def _run_record(run_dir: Path) -> dict[str, Any]:
    """The run's run.json, which must name its data."""
    record = read_run_json(run_dir, "run.json")
    if not isinstance(record, dict) or not isinstance(record.get("data"), str):
        raise DataError("holds no 'data' entry; the run directory is damaged", source=str(run_dir / "run.json"))
    return record


def _data_differences(record: dict[str, Any], data: str) -> list[str]:
    recorded, current = record.get("inputs"), fingerprint(data)
    if current is None:
        return [f"data {data} does not exist now"]
    if recorded is None:
        return ["run.json records no data digest (written by an older deepwright)"]
    if current["sha256"] == recorded["sha256"]:
        return []
    return [f"data {data}: {data_difference(recorded, current)}"]


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
