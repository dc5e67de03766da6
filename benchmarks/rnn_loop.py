"""Recurrent training throughput: deepwright against an idiomatic hand-written PyTorch loop, same network.

The task: 8,000 generated series of 50 steps × 8 channels, 4 classes (which channel has the largest trend), 80/20
random split with no validation rows, Adam 1e-3, batch 64, 5 epochs, 2 torch threads. The network, for each of
LSTM and GRU: one recurrent layer of 64 units over the steps, its last state → Linear(64, 4).

- deepwright: `Pipeline.from_config(dict).fit(frame)` in this process, the series as a `timeseries` column
  (cells are arrays; parsing and normalising happen before training and are not timed); the figure is the median
  `samples_per_second` of the steady epochs (all but the first) from the run's history.
- hand-written: the loop below (`HandWritten`): tensors in memory, one `randperm` per epoch, slicing, the
  recurrent module, `F.cross_entropy`, `zero_grad` / `backward` / `step`; the same median of its epochs 2–5.

Both networks are asserted to have the same number of parameters. The two are interleaved in one process (the
order alternates every round); rounds run until `--repeats` (3) had no run during which other processes used more
than 10% of the CPUs, or twice that many ran; the result is the median over those clean rounds (over every round
when fewer were clean, as `basis` says), the ratio deepwright / hand-written, and the median of the round-by-round
ratios. Goal: ≥ 0.9 for LSTM and GRU.

Wall-clock figures on a machine that other processes keep busy mostly measure them. So each cell is also measured
by CPU time, which they barely touch (`cpu_time`): one thread, and for each tool the process CPU seconds of a
2-epoch and a 6-epoch run, whose difference over 4 is one epoch's training alone (start-up, preprocessing and
evaluation cancel out); sequences per CPU second, medians over `--cpu-rounds` (3) interleaved rounds.

    .venv/bin/python benchmarks/rnn_loop.py [--repeats 3] [--cells lstm gru]
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import Rounds, base_parser, emit, environment, interleaved, log, median, ratio

GOAL = 0.9
ROWS, STEPS, CHANNELS, CLASSES, HIDDEN = 8000, 50, 8, 4, 64
BATCH_SIZE, EPOCHS, THREADS, TRAIN_SHARE = 64, 5, 2, 0.8
SHORT_RUN, LONG_RUN = 2, 6  # epochs of the two runs whose CPU-time difference is the cost of training alone


def make_series(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ROWS, STEPS, CHANNELS) float32 random walks with a drift, and the channel of the largest drift as label."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0, 0.2, (ROWS, 1, CHANNELS))
    values = np.cumsum(rng.normal(0, 1, (ROWS, STEPS, CHANNELS)) + drift, axis=1).astype(np.float32)
    labels = drift[:, 0, :CLASSES].argmax(axis=1)
    return values, labels


def config(cell: str) -> dict[str, Any]:
    """The deepwright config of the same network: series → one recurrent layer, last state → Linear → classes."""
    return {
        "input_features": [
            {
                "name": "series",
                "type": "timeseries",
                "normalization": "none",
                "encoder": {"type": "rnn", "cell": cell, "dim": HIDDEN, "layers": 1, "reduction": "last"},
            }
        ],
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "dims": []},
        "preprocessing": {"split": {"method": "random", "fractions": [TRAIN_SHARE, 1 - TRAIN_SHARE], "seed": 0}},
        "trainer": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "optimizer": {"type": "adam", "lr": 0.001},
            "threads": THREADS,
            "checkpoint": False,
        },
    }


def run_deepwright(frame: Any, cell: str, *, epochs: int = EPOCHS, threads: int = THREADS) -> dict[str, Any]:
    """One `fit` on the in-memory table; the steady samples/s and the parameter count."""
    import deepwright

    options = config(cell)
    options["trainer"].update(epochs=epochs, threads=threads)
    pipeline = deepwright.Pipeline.from_config(options)
    with tempfile.TemporaryDirectory(prefix="dw-rnn-") as output:
        result = pipeline.fit(frame, output_dir=Path(output), run_name="rnn", progress=False)
    speeds = [record["samples_per_second"] for record in result.history]
    return {
        "steady_samples_per_s": median(speeds[1:]),
        "first_epoch_samples_per_s": speeds[0],
        "parameters": sum(parameter.numel() for parameter in pipeline.predictor.model.parameters()),
        "test_accuracy": round(result.metrics["test"]["label"]["accuracy"], 4),
    }


class HandWritten:
    """The idiomatic PyTorch loop: a module with the recurrent layer and a linear head, manual batching."""

    def __init__(self, values: np.ndarray, labels: np.ndarray, cell: str) -> None:
        import torch

        order = np.random.default_rng(0).permutation(len(values))
        train = order[: round(len(values) * TRAIN_SHARE)]
        self.inputs = torch.from_numpy(values[train])
        self.targets = torch.from_numpy(labels[train])
        self.cell = cell

    def __call__(self) -> dict[str, Any]:
        return self.run()

    def run(self, *, epochs: int = EPOCHS, threads: int = THREADS) -> dict[str, Any]:
        """Train a fresh network for `epochs`; its steady samples/s and parameter count."""
        import torch
        import torch.nn.functional as F
        from torch import nn

        recurrent = {"lstm": nn.LSTM, "gru": nn.GRU}[self.cell]

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.rnn = recurrent(CHANNELS, HIDDEN, batch_first=True)
                self.head = nn.Linear(HIDDEN, CLASSES)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                _, state = self.rnn(x)
                hidden = state[0] if isinstance(state, tuple) else state
                return self.head(hidden[-1])

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = Net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        count = len(self.inputs)
        speeds = []
        for _ in range(epochs):
            model.train()
            started = time.perf_counter()
            permutation = torch.randperm(count, generator=generator)
            for start in range(0, count, BATCH_SIZE):
                rows = permutation[start : start + BATCH_SIZE]
                loss = F.cross_entropy(model(self.inputs[rows]), self.targets[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            speeds.append(count / (time.perf_counter() - started))
        return {
            "steady_samples_per_s": median(speeds[1:]),
            "first_epoch_samples_per_s": round(speeds[0], 1),
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
        }


def cpu_seconds() -> float:
    """CPU seconds used so far by this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def epoch_cpu_seconds(train: Any) -> float:
    """One epoch's CPU seconds of `train(epochs=…, threads=1)`: (6-epoch run − 2-epoch run) / 4."""
    runs = {}
    for epochs in (SHORT_RUN, LONG_RUN):
        started = cpu_seconds()
        train(epochs=epochs, threads=1)
        runs[epochs] = cpu_seconds() - started
    return (runs[LONG_RUN] - runs[SHORT_RUN]) / (LONG_RUN - SHORT_RUN)


def cpu_time(frame: Any, hand_written: HandWritten, cell: str, rounds: int) -> dict[str, Any]:
    """Training sequences per CPU second of both loops (one thread), interleaved rounds."""
    rows = len(hand_written.inputs)
    tools = {
        "torch": hand_written.run,
        "deepwright": lambda epochs, threads: run_deepwright(frame, cell, epochs=epochs, threads=threads),
    }
    speeds: dict[str, list[float]] = {name: [] for name in tools}
    for train in tools.values():  # first calls pay one-time costs (imports, thread pools): not measured
        train(epochs=SHORT_RUN, threads=1)
    for index in range(rounds):
        for name in tools if index % 2 == 0 else reversed(tools):
            speeds[name].append(round(rows / epoch_cpu_seconds(tools[name]), 1))
        log(
            f"{cell} cpu round {index + 1}: sequences per CPU second "
            + ", ".join(f"{name} {values[-1]:,.0f}" for name, values in speeds.items())
        )
    ours, theirs = median(speeds["deepwright"]), median(speeds["torch"])
    return {
        "threads": 1,
        "deepwright_sequences_per_cpu_s": ours,
        "torch_sequences_per_cpu_s": theirs,
        "ratio": ratio(ours, theirs),
        "rounds": speeds,
        "goal_met": ours / theirs >= GOAL,
    }


def summarize(cell: str, rounds: Rounds) -> dict[str, Any]:
    """Medians of both loops for one cell, their ratio, and whether the goal is met."""
    ours = rounds.median("deepwright", "steady_samples_per_s")
    theirs = rounds.median("torch", "steady_samples_per_s")
    per_round = rounds.ratios("deepwright", "torch", "steady_samples_per_s")
    return {
        "cell": cell,
        "parameters": rounds.runs["deepwright"][0]["parameters"],
        "deepwright_steady_samples_per_s": round(ours, 1),
        "torch_steady_samples_per_s": round(theirs, 1),
        "ratio": ratio(ours, theirs),
        "ratio_per_round": per_round,
        "median_ratio_per_round": median(per_round),
        "goal_met": ours / theirs >= GOAL,
        **rounds.record(),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], data_dir=False)
    parser.add_argument("--cells", nargs="+", choices=["lstm", "gru"], default=["lstm", "gru"])
    parser.add_argument("--cpu-rounds", type=int, default=3, help="rounds of the CPU-time measure (0: none)")
    args = parser.parse_args()

    import pandas as pd

    values, labels = make_series()
    frame = pd.DataFrame({"series": list(values), "label": labels})
    results = []
    for cell in args.cells:
        hand_written = HandWritten(values, labels, cell)
        tools = {
            "torch": hand_written,
            "deepwright": lambda cell=cell: run_deepwright(frame, cell),
        }
        rounds = interleaved(
            tools, args.repeats, wait_s=args.wait_quiet, figure="steady_samples_per_s", label=f"{cell} "
        )
        counts = {run["parameters"] for runs in rounds.runs.values() for run in runs}
        if len(counts) != 1:
            raise SystemExit(f"error: the two {cell} networks differ in size: {sorted(counts)} parameters")
        results.append(summarize(cell, rounds))
        if args.cpu_rounds:
            results[-1]["cpu_time"] = cpu_time(frame, hand_written, cell, args.cpu_rounds)
        cpu_ratio = results[-1].get("cpu_time", {}).get("ratio")
        log(f"{cell}: ratio {results[-1]['ratio']}, by CPU time {cpu_ratio} (goal ≥ {GOAL})")
    emit(
        {
            "benchmark": "rnn_loop",
            "compares": "deepwright Pipeline.fit steady samples/s vs a hand-written PyTorch loop with the same "
            "recurrent network",
            "goal": f"ratio >= {GOAL} for every cell",
            "task": {"rows": ROWS, "steps": STEPS, "channels": CHANNELS, "classes": CLASSES, "hidden": HIDDEN},
            "batch_size": BATCH_SIZE,
            "epochs": EPOCHS,
            "repeats": args.repeats,
            "results": results,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
