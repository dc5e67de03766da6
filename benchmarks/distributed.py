"""Distributed training on one machine: `deepwright train` in 1 process against `deepwright train --nproc 2`
(torchrun, gloo, DDP), for the tabular seed model and nanoGPT's baby GPT, with the same global batch.

- tabular: the seed task (1000 numeric inputs → Dense 128 ReLU → 10 classes, Adam 1e-3, batch 256) on the seed
  table of `../shared/bench/make_seed_csv.py` (50,000 rows; `--rows`/`--features` for a smaller one), 80/20 split;
  the figure is the median `samples_per_second` of the steady epochs (all but the first; rank 0 logs the rows of
  both ranks).
- GPT: nanoGPT's CPU configuration (4 layers, 4 heads, width 128, block 64, batch 12) on Tiny Shakespeare
  (`../shared/data/tinyshakespeare`, else the tests' small fixture) for `--iters` steps; tokens/s over the training
  steps (the estimates left out).

Each run is a subprocess, as a user runs it: wall time, CPU time (the launcher and every worker), and the time per
optimizer step from log.jsonl. The DDP overhead per step is how much a 2-process step takes beyond half of a
1-process step (perfect scaling): what the gradient all-reduce, the per-rank batch handling and the sharing of two
cores cost. With two processes on a two-core machine each gets one core, where one process used both: expect a
speed-up well under 2, or none; the figures say what it is. 1 and 2 processes alternate for `--repeats` rounds;
medians are reported.

    .venv/bin/python benchmarks/distributed.py [--repeats 3] [--rows 50000] [--features 1000] [--iters 500]
    .venv/bin/python benchmarks/distributed.py --rows 2000 --features 20 --epochs 2 --iters 20 --repeats 1  # check
"""

from __future__ import annotations

import functools
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from _common import (
    PYTHON,
    REPO_ROOT,
    SHARED_DATA_DIR,
    base_parser,
    deepwright_command,
    emit,
    environment,
    generated_table,
    log,
    measured,
    median,
    ratio,
    reference_script,
    wait_for_quiet_cpu,
)

CORPUS = SHARED_DATA_DIR / "tinyshakespeare" / "input.txt"
SMALL_CORPUS = REPO_ROOT / "tests" / "fixtures" / "text" / "shakespeare.txt"
TABLE_BATCH = 256
GPT_BATCH, GPT_BLOCK = 12, 64


def seed_table(data_dir: Path, rows: int, features: int) -> Path:
    """The seed table: the shared one (50,000 × 1000), or one of `rows` × `features` made by the same generator."""
    if (rows, features) == (50_000, 1000):
        return generated_table("seed.csv", data_dir)
    path = data_dir / f"seed-{rows}x{features}.csv"
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        command = [PYTHON, str(reference_script("make_seed_csv.py")), "--out", str(path)]
        subprocess.run([*command, "--rows", str(rows), "--features", str(features)], check=True)
    return path


def table_config(features: int, epochs: int) -> dict[str, Any]:
    """The seed task as a deepwright config, threads left to deepwright (it splits the cores among the ranks)."""
    inputs = [{"name": f"f{index}", "type": "number", "missing": {"strategy": "drop_row"}} for index in range(features)]
    return {
        "input_features": inputs,
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "dims": [128], "activation": "relu"},
        "preprocessing": {"split": {"method": "random", "fractions": [0.8, 0.2]}},
        "trainer": {"epochs": epochs, "batch_size": TABLE_BATCH, "optimizer": {"type": "adam", "lr": 0.001}},
    }


def gpt_config(iters: int) -> dict[str, Any]:
    """nanoGPT's baby GPT (its CPU configuration), `iters` steps, one estimate at the end."""
    return {
        "model_type": "lm",
        "model": {"layers": 4, "heads": 4, "dim": 128, "block_size": GPT_BLOCK, "dropout": 0.0},
        "trainer": {
            "max_steps": iters,
            "batch_size": GPT_BATCH,
            "eval_every": iters,
            "eval_batches": 5,
            "optimizer": {"type": "adamw", "lr": 1e-3},
        },
    }


def train(config: dict[str, Any], data: Path, folder: Path, processes: int) -> dict[str, Any]:
    """`deepwright train` (with `--nproc` for several processes) as a subprocess: wall and CPU seconds, and the
    run's log records."""
    name = f"{processes}proc-{time.monotonic_ns()}"
    config_path = folder / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    command = [*deepwright_command(), "train", "--config", str(config_path), "--data", str(data)]
    command += ["--output", str(folder / "runs"), "--name", name, "--quiet"]
    command += ["--nproc", str(processes)] if processes > 1 else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    log_path = folder / "runs" / name / "log.jsonl"
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"processes": processes, "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "records": records}


def table_figures(run: dict[str, Any]) -> dict[str, Any]:
    """Steady samples/s, the time per step, and the final losses of a table run."""
    records = run.pop("records")
    steady = records[1:] or records
    steps = records[-1]["step"] - (records[0]["step"] if len(records) > 1 else 0)
    seconds = sum(record["seconds"] for record in steady)
    return run | {
        "samples_per_second": median([record["samples_per_second"] for record in steady]),
        "step_ms": round(1000 * seconds / max(1, steps), 3),
        "train_loss": records[-1]["train_loss"],
        "val_loss": records[-1].get("val_loss"),
    }


def gpt_figures(run: dict[str, Any], iters: int) -> dict[str, Any]:
    """Tokens/s over the training steps, the time per step and the losses of a GPT run."""
    records = run.pop("records")
    seconds = sum(record["seconds"] for record in records)
    return run | {
        "tokens_per_second": round(iters * GPT_BATCH * GPT_BLOCK / seconds, 1),
        "step_ms": round(1000 * seconds / iters, 3),
        "train_loss": records[-1]["train_loss"],
        "val_loss": records[-1].get("val_loss"),
    }


def compare(runs: dict[int, list[dict[str, Any]]], speed: str) -> dict[str, Any]:
    """Medians of 1 and 2 processes, the speed-up, and the DDP overhead per step beyond perfect halving."""
    summary = {
        f"{processes}_processes": {
            key: median([run[key] for run in rounds])
            for key in (speed, "step_ms", "wall_seconds", "cpu_seconds", "others_cpu_share")
        }
        for processes, rounds in runs.items()
    }
    one, two = summary["1_processes"], summary["2_processes"]
    return summary | {
        "speedup_2_vs_1": ratio(two[speed], one[speed]),
        "wall_2_vs_1": ratio(two["wall_seconds"], one["wall_seconds"]),
        "cpu_2_vs_1": ratio(two["cpu_seconds"], one["cpu_seconds"]),
        "ddp_overhead_ms_per_step": round(two["step_ms"] - one["step_ms"] / 2, 3),
        "rounds": runs,
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the seed table (default: 50000)")
    parser.add_argument("--features", type=int, default=1000, help="its numeric columns (default: 1000)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the table runs (default: 5)")
    parser.add_argument("--iters", type=int, default=500, help="steps of the GPT runs (default: 500)")
    args = parser.parse_args()
    table = seed_table(args.data_dir, args.rows, args.features)
    corpus = CORPUS if CORPUS.is_file() else SMALL_CORPUS
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dw-distributed-") as scratch:
        folder = Path(scratch)
        plans = {
            "tabular": (table_config(args.features, args.epochs), table, table_figures, "samples_per_second"),
            "gpt": (gpt_config(args.iters), corpus, lambda run: gpt_figures(run, args.iters), "tokens_per_second"),
        }
        for name, (config, data, figures, speed) in plans.items():
            runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for round_number in range(args.repeats):
                order = (1, 2) if round_number % 2 == 0 else (2, 1)
                for processes in order:
                    wait_for_quiet_cpu(timeout_s=args.wait_quiet)
                    run = figures(measured(functools.partial(train, config, data, folder, processes)))
                    runs[processes].append(run | {"round": round_number})
                    log(f"{name}, {processes} process(es): {run[speed]:,.0f} {speed}, {run['wall_seconds']} s wall")
            results[name] = compare(runs, speed)
    emit(
        {
            "benchmark": "distributed",
            "compares": "deepwright train in 1 process vs --nproc 2 (torchrun, gloo, DDP), same global batch",
            "tabular": {"rows": args.rows, "features": args.features, "batch": TABLE_BATCH, **results["tabular"]},
            "gpt": {"corpus": str(corpus), "iters": args.iters, "batch": GPT_BATCH, **results["gpt"]},
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
