"""One-row prediction latency in-process: a raw dict through a loaded deepwright bundle, against the hand-written
PyTorch predictor of `torch_mixed.py`.

- deepwright: `deepwright.load(bundle).predict(row)` with `row` a plain dict of raw values, timed call by call
  (`--calls`, default 500, after 50 warm-up calls), on two bundles made by this script:
  the quickstart bundle (`deepwright quickstart --output <tmp>`: breast_cancer with the config `deepwright init`
  infers; 30 numbers → binary) and the mixed-table bundle (20 numbers + 3 categories → 10 classes, trained via the
  API with the config `train_command.py` uses).
- reference: `../shared/bench/torch_mixed.py --csv <data-dir>/mixed.csv`, its `latency_1row_dict_ms_p50`
  (dict → tensors with its own z-score and vocabulary lookup → model → class name, 500 calls).

Each round runs the reference and both bundles (the order reverses every other round); rounds run until `--repeats`
(3) had no run during which other processes used more than 10% of the CPUs, or twice that many ran; the result is
the median of each p50 and p99 over those clean rounds (over every round when fewer were clean, as `basis` says).
Goal: deepwright p50 ≤ 1 ms. `--profile` prints a cProfile of 500 mixed-bundle calls to standard error.

    .venv/bin/python benchmarks/predict_latency.py [--data-dir /tmp/deepwright-bench] [--repeats 3] [--profile]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    base_parser,
    deepwright_command,
    emit,
    environment,
    generated_table,
    interleaved,
    log,
    median,
    mixed_config,
    percentile,
    profile,
    ratio,
    run_reference,
    run_timed,
)

GOAL_MS = 1.0
WARMUP_CALLS = 50


def quickstart_bundle(folder: Path) -> tuple[Path, dict[str, Any]]:
    """Run `deepwright quickstart` into `folder`; return its bundle and one raw input row of its data."""
    import pandas as pd

    run_timed([*deepwright_command(), "quickstart", "--output", str(folder)])
    bundle = folder / "runs" / "breast_cancer" / "model"
    frame = pd.read_csv(folder / "breast_cancer.csv")
    return bundle, frame.drop(columns=["diagnosis"]).iloc[0].to_dict()


def mixed_bundle(csv: Path, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Train the mixed-table model via the API into `folder`; return its bundle and one raw input row."""
    import pandas as pd

    import deepwright

    frame = pd.read_csv(csv)
    result = deepwright.Pipeline.from_config(mixed_config()).fit(frame, output_dir=folder, progress=False)
    return result.bundle_dir, frame.drop(columns=["label"]).iloc[-1].to_dict()


def latencies_ms(predict: Callable[[], Any], calls: int) -> list[float]:
    """Milliseconds of each of `calls` calls to `predict`, after a warm-up."""
    for _ in range(WARMUP_CALLS):
        predict()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        predict()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> dict[str, float]:
    """p50, p99 and mean of a list of milliseconds."""
    return {
        "p50_ms": round(percentile(times, 0.5), 4),
        "p99_ms": round(percentile(times, 0.99), 4),
        "mean_ms": round(sum(times) / len(times), 4),
    }


def reference_latency(csv: Path) -> dict[str, float]:
    """One run of `torch_mixed.py`: its one-row dict latency (it trains its model first)."""
    _, result = run_reference("torch_mixed.py", "--csv", str(csv))
    return {"p50_ms": result["latency_1row_dict_ms_p50"]}


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The median over runs of every latency figure."""
    return {key: round(median([run[key] for run in runs]), 4) for key in runs[0] if key.endswith("_ms")}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="timed calls per bundle and repetition")
    parser.add_argument("--profile", action="store_true", help="cProfile 500 mixed-bundle calls to stderr")
    args = parser.parse_args()
    csv = generated_table("mixed.csv", args.data_dir)

    import deepwright

    with tempfile.TemporaryDirectory(prefix="dw-latency-") as folder:
        log("training the quickstart and mixed-table bundles")
        bundles = {
            "quickstart_breast_cancer": quickstart_bundle(Path(folder) / "quickstart"),
            "mixed_table": mixed_bundle(csv, Path(folder) / "mixed"),
        }
        models = {name: (deepwright.load(bundle), row) for name, (bundle, row) in bundles.items()}
        tools = {"torch_mixed": lambda: reference_latency(csv)}
        for name, (model, row) in models.items():
            tools[name] = lambda model=model, row=row: summary(latencies_ms(lambda: model.predict(row), args.calls))
        rounds = interleaved(tools, args.repeats, wait_s=args.wait_quiet, figure="p50_ms")
        if args.profile:
            model, row = models["mixed_table"]
            profile(lambda: [model.predict(row) for _ in range(500)])
        sample = models["mixed_table"][0].predict(models["mixed_table"][1])

    results = {name: medians(rounds.kept(name)) for name in rounds.runs}
    reference_p50 = results["torch_mixed"]["p50_ms"]
    emit(
        {
            "benchmark": "predict_latency",
            "compares": "deepwright.load(bundle).predict(dict) vs ../shared/bench/torch_mixed.py "
            "latency_1row_dict_ms_p50 (same run)",
            "goal": f"deepwright p50 <= {GOAL_MS} ms",
            "repeats": args.repeats,
            "calls_per_repeat": args.calls,
            "results": results,
            **rounds.record(),
            "ratio_p50_vs_torch": {name: ratio(results[name]["p50_ms"], reference_p50) for name in models},
            "median_ratio_p50_per_round": {
                name: median(rounds.ratios(name, "torch_mixed", "p50_ms")) for name in models
            },
            "goal_met": {name: results[name]["p50_ms"] <= GOAL_MS for name in models},
            "sample_prediction": sample,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
