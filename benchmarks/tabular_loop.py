"""Training throughput on the seed task: deepwright against the hand-written PyTorch loop.

The seed's model (1000 numeric inputs → Dense 128 ReLU → 10 classes, Adam 1e-3, 10 epochs) on the generated
50,000-row seed table, 80/20 random split with no validation rows, 2 torch threads, at batch 32 and 256.

- deepwright: `deepwright.Pipeline.from_config(dict).fit(frame)` in this process; the figure is the median
  `samples_per_second` of the steady epochs (all but the first) from the run's history. The 358 MB CSV is read
  once and the DataFrame is passed to every `fit`; rows with an empty cell are dropped (`missing: drop_row`),
  as the reference's `dropna()` does.
- reference: `../shared/bench/torch_seed.py --loader manual` (one randperm per epoch, tensor slicing) as a
  subprocess; the figure is its `steady_samples_per_s` (the same median over epochs 2–10).

The two are interleaved (the order alternates every round); rounds run until `--repeats` (3) had no run during
which other processes used more than 10% of the CPUs, or twice that many ran; the result is the median over those
clean rounds (over every round when fewer were clean, as `basis` says), the ratio deepwright / reference of those
medians, and the median of the round-by-round ratios. Goal: ≥ 0.95 at both batch sizes.

    .venv/bin/python benchmarks/tabular_loop.py [--data-dir /tmp/deepwright-bench] [--repeats 3]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _common import (
    Rounds,
    base_parser,
    emit,
    environment,
    generated_table,
    interleaved,
    log,
    median,
    ratio,
    run_reference,
)

GOAL = 0.95
FEATURES = 1000


def seed_config(batch_size: int, epochs: int) -> dict[str, Any]:
    """The seed task as a deepwright config: f0..f999 numbers → Dense 128 ReLU → `label` category."""
    inputs = [{"name": f"f{index}", "type": "number", "missing": {"strategy": "drop_row"}} for index in range(FEATURES)]
    return {
        "input_features": inputs,
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "dims": [128], "activation": "relu"},
        "preprocessing": {"split": {"method": "random", "fractions": [0.8, 0.2]}},
        "trainer": {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": {"type": "adam", "lr": 0.001},
            "threads": 2,
        },
    }


def run_deepwright(frame: Any, batch_size: int, epochs: int) -> dict[str, Any]:
    """One `fit` on the in-memory table; the steady samples/s and what else the run says."""
    import deepwright

    pipeline = deepwright.Pipeline.from_config(seed_config(batch_size, epochs))
    with tempfile.TemporaryDirectory(prefix="dw-tabular-") as output:
        result = pipeline.fit(frame, output_dir=Path(output), run_name="seed", progress=False)
    speeds = [record["samples_per_second"] for record in result.history]
    return {
        "steady_samples_per_s": median(speeds[1:]),
        "first_epoch_samples_per_s": speeds[0],
        "train_s": round(sum(record["seconds"] for record in result.history), 3),
        "fit_s": round(result.seconds, 3),
        "n_train": result.split_sizes["train"],
        "test_accuracy": result.metrics["test"]["label"]["accuracy"],
    }


def run_torch(csv: Path, batch_size: int, epochs: int) -> dict[str, Any]:
    """One run of the hand-written loop with manual batching."""
    _, result = run_reference(
        "torch_seed.py",
        "--csv",
        str(csv),
        "--batch-size",
        str(batch_size),
        "--epochs",
        str(epochs),
        "--loader",
        "manual",
        "--threads",
        "2",
    )
    return {
        "steady_samples_per_s": result["steady_samples_per_s"],
        "train_s": result["train_s"],
        "n_train": result["n_train"],
        "test_accuracy": result["test_accuracy"],
    }


def summarize(batch_size: int, rounds: Rounds) -> dict[str, Any]:
    """Medians of both tools at one batch size, their ratio, and whether the goal is met."""
    ours = rounds.median("deepwright", "steady_samples_per_s")
    theirs = rounds.median("torch", "steady_samples_per_s")
    return {
        "batch_size": batch_size,
        "deepwright_steady_samples_per_s": round(ours, 1),
        "torch_manual_steady_samples_per_s": round(theirs, 1),
        "ratio": ratio(ours, theirs),
        "ratio_per_round": rounds.ratios("deepwright", "torch", "steady_samples_per_s"),
        "median_ratio_per_round": median(rounds.ratios("deepwright", "torch", "steady_samples_per_s")),
        "goal_met": ours / theirs >= GOAL,
        **rounds.record(),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    csv = generated_table("seed.csv", args.data_dir)

    import pandas as pd

    log(f"reading {csv} once")
    frame = pd.read_csv(csv)
    results = []
    for size in args.batch_sizes:
        tools = {
            "torch": lambda size=size: run_torch(csv, size, args.epochs),
            "deepwright": lambda size=size: run_deepwright(frame, size, args.epochs),
        }
        rounds = interleaved(
            tools, args.repeats, wait_s=args.wait_quiet, figure="steady_samples_per_s", label=f"batch {size} "
        )
        results.append(summarize(size, rounds))
    emit(
        {
            "benchmark": "tabular_loop",
            "compares": "deepwright Pipeline.fit steady samples/s vs ../shared/bench/torch_seed.py --loader manual",
            "goal": f"ratio >= {GOAL} at every batch size",
            "repeats": args.repeats,
            "epochs": args.epochs,
            "results": results,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
