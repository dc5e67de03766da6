"""The whole `deepwright train` command against the whole hand-written PyTorch script, on the mixed table.

Both are subprocesses timed from launch to exit: import, read the 50,000-row mixed CSV (20 numbers + 3
categories, `label` of 10 classes), preprocess, split 80/20 with no validation rows, train 10 epochs at batch 128
(Adam 1e-3, Dense 128 ReLU, 2 torch threads), evaluate, save.

- deepwright: `deepwright train --config <data-dir>/mixed-train.yaml --data <data-dir>/mixed.csv --quiet`
  (the config is written there by this script; the run also writes its checkpoints, plots and report).
- reference: `../shared/bench/torch_mixed.py --csv <data-dir>/mixed.csv` (its internal `total_s` is reported too).

The commands are interleaved (the order alternates every round); rounds run until `--repeats` (3) had no run during
which other processes used more than 10% of the CPUs, or twice that many ran; the result is the median wall time
over those clean rounds (over every round when fewer were clean, as `basis` says), the ratio deepwright / reference
of those medians, and the median of the round-by-round ratios. Goal: ≤ 1.2.

    .venv/bin/python benchmarks/train_command.py [--data-dir /tmp/deepwright-bench] [--repeats 3]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from _common import (
    base_parser,
    deepwright_command,
    emit,
    environment,
    generated_table,
    interleaved,
    median,
    mixed_config,
    ratio,
    run_reference,
    run_timed,
)

GOAL = 1.2


def write_config(data_dir: Path) -> Path:
    """Write the benchmark's config to the data folder (so the command can be rerun by hand)."""
    path = data_dir / "mixed-train.yaml"
    path.write_text(yaml.safe_dump(mixed_config(), sort_keys=False), encoding="utf-8")
    return path


def run_deepwright(config: Path, csv: Path) -> dict[str, Any]:
    """One `deepwright train` subprocess in a fresh output folder: wall seconds and the run's own figures."""
    with tempfile.TemporaryDirectory(prefix="dw-train-") as output:
        command = [*deepwright_command(), "train", "--config", str(config), "--data", str(csv)]
        seconds, _ = run_timed([*command, "--output", output, "--name", "mixed", "--quiet"])
        run_dir = Path(output) / "mixed"
        history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "wall_s": round(seconds, 3),
        "train_s": round(sum(record["seconds"] for record in history), 3),
        "test_accuracy": metrics["test"]["label"]["accuracy"],
    }


def run_torch(csv: Path) -> dict[str, Any]:
    """One run of the hand-written script."""
    seconds, result = run_reference("torch_mixed.py", "--csv", str(csv))
    return {
        "wall_s": round(seconds, 3),
        "total_s": result["total_s"],
        "train_s": result["train_s"],
        "test_accuracy": result["test_accuracy"],
    }


def main() -> None:
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    csv = generated_table("mixed.csv", args.data_dir)
    config = write_config(args.data_dir)
    tools = {"torch": lambda: run_torch(csv), "deepwright": lambda: run_deepwright(config, csv)}
    rounds = interleaved(tools, args.repeats, wait_s=args.wait_quiet, figure="wall_s")
    ours, theirs = rounds.median("deepwright", "wall_s"), rounds.median("torch", "wall_s")
    emit(
        {
            "benchmark": "train_command",
            "compares": "`deepwright train` wall time vs ../shared/bench/torch_mixed.py wall time (subprocesses)",
            "command": f"deepwright train --config {config} --data {csv} --output <tmp> --quiet",
            "goal": f"ratio <= {GOAL}",
            "repeats": args.repeats,
            "deepwright_wall_s": round(ours, 3),
            "torch_mixed_wall_s": round(theirs, 3),
            "ratio": ratio(ours, theirs),
            "ratio_per_round": rounds.ratios("deepwright", "torch", "wall_s"),
            "median_ratio_per_round": median(rounds.ratios("deepwright", "torch", "wall_s")),
            "deepwright_train_s": round(rounds.median("deepwright", "train_s"), 3),
            "torch_mixed_train_s": round(rounds.median("torch", "train_s"), 3),
            "goal_met": ours / theirs <= GOAL,
            **rounds.record(),
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
