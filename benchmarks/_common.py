"""Helpers shared by the benchmark scripts: where the reference scripts and data live, generating the benchmark
tables once, timing subprocesses, medians and percentiles, and printing the one-line JSON result.

The reference scripts are the plain-PyTorch programs in `../shared/bench/` (relative to the repository root); every
benchmark runs them in the same session as deepwright, interleaved, so only ratios within one run are compared. The
machine is shared: every run records the share of the CPUs other processes used meanwhile, and rounds where that
was high are run again and left out of the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "bench"
SHARED_DATA_DIR = SHARED_DIR / "data"
DEFAULT_DATA_DIR = Path("/tmp/deepwright-bench")
PYTHON = sys.executable

# A run during which other processes used more than this share of all CPUs is contended: on two cores, a second
# process running torch slows a two-thread torch process down many times over, so its round is run again and left
# out of the summary (see `Rounds`).
MAX_OTHERS_SHARE = 0.1
# The generated tables: file name → the reference generator that writes it (with its default arguments).
GENERATORS = {"seed.csv": "make_seed_csv.py", "mixed.csv": "make_mixed_csv.py"}


def reference_script(name: str) -> Path:
    """The path of a reference script in `../shared/bench/`; exit with a clear message when it is absent."""
    if not REFERENCE_DIR.is_dir():
        sys.exit(
            f"error: the reference scripts folder {REFERENCE_DIR} is absent; these benchmarks compare deepwright "
            "with the plain-PyTorch scripts kept there (../shared/bench/ relative to the repository root)"
        )
    path = REFERENCE_DIR / name
    if not path.is_file():
        sys.exit(f"error: reference script {path} is missing")
    return path


def base_parser(description: str, *, repeats: int | None = 3, data_dir: bool = True) -> argparse.ArgumentParser:
    """An argument parser with `--data-dir` (the cache of generated data) and `--repeats` (unless turned off)."""
    parser = argparse.ArgumentParser(description=description)
    if data_dir:
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=DEFAULT_DATA_DIR,
            help=f"cache folder for generated data and configs (default: {DEFAULT_DATA_DIR})",
        )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="S",
        help="before each measurement, wait up to S seconds for other processes to leave the CPUs idle "
        "(default: 30; 0: do not wait)",
    )
    if repeats is not None:
        parser.add_argument(
            "--repeats",
            type=int,
            default=repeats,
            help=f"rounds wanted, each running every compared command once (default: {repeats})",
        )
    return parser


def generated_table(name: str, data_dir: Path) -> Path:
    """`data_dir/name`, generated once with its reference generator when absent (the seed table takes minutes)."""
    generator = reference_script(GENERATORS[name])  # also checks, before any work, that the references are there
    path = data_dir / name
    if path.is_file():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.csv")
    log(f"generating {path} with {generator.name} (once; later runs reuse it)")
    subprocess.run([PYTHON, str(generator), "--out", str(partial)], check=True)
    partial.replace(path)
    return path


def deepwright_command() -> list[str]:
    """The installed `deepwright` console script (next to this interpreter), or `python -m deepwright`."""
    script = Path(PYTHON).parent / "deepwright"
    if script.is_file():
        return [str(script)]
    found = shutil.which("deepwright")
    return [found] if found else [PYTHON, "-m", "deepwright"]


def run_timed(command: Sequence[str]) -> tuple[float, str]:
    """Run `command` to completion; return (wall seconds, its stdout). A failure stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(list(command), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        sys.exit(f"error: {' '.join(command)} exited with status {completed.returncode}")
    return seconds, completed.stdout


def last_json_line(text: str) -> dict[str, Any]:
    """The JSON object on the last non-empty line of `text` (how every reference script reports)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        sys.exit("error: a reference script printed nothing")
    return json.loads(lines[-1])


def run_reference(name: str, *arguments: str) -> tuple[float, dict[str, Any]]:
    """Run the reference script `name` with this interpreter; return (wall seconds, its JSON result)."""
    seconds, stdout = run_timed([PYTHON, str(reference_script(name)), *arguments])
    return seconds, last_json_line(stdout)


def median(values: Sequence[float]) -> float:
    """The median of `values`."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (0..1) of `values`, nearest-rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return float(ordered[rank - 1])


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator rounded to 3 places (inf for a zero denominator)."""
    return round(numerator / denominator, 3) if denominator else math.inf


def profile(function: Callable[[], Any], *, limit: int = 25) -> None:
    """Run `function` under cProfile and print its `limit` costliest calls (cumulative time) to standard error."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(function)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(limit)


def cpu_busy_share(seconds: float = 1.0) -> float:
    """The share (0..1) of all CPUs busy over the next `seconds`, from /proc/stat (0 where it is unreadable)."""
    try:
        before = _cpu_times()
        time.sleep(seconds)
        after = _cpu_times()
    except OSError:
        return 0.0
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else 0.0


def wait_for_quiet_cpu(max_busy: float = 0.3, timeout_s: float = 30.0) -> float:
    """Wait until other processes keep less than `max_busy` of the CPUs busy (the machine is shared, and two
    processes of two torch threads each on two cores slow each other down many times over); give up after
    `timeout_s`. Returns the last busy share seen."""
    deadline = time.monotonic() + timeout_s
    share = cpu_busy_share(1.0 if timeout_s > 0 else 0.2)
    if share >= max_busy and timeout_s > 0:
        log(f"  waiting for quiet CPUs: other processes keep {share:.0%} busy")
    while share >= max_busy and time.monotonic() < deadline:
        time.sleep(4.0)
        share = cpu_busy_share()
    return round(share, 3)


def measured(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Call `run` and return its result with `others_cpu_share`: the share of all CPUs that other processes
    (not this one or its children) used meanwhile, from /proc/stat and getrusage."""
    busy_before, own_before, started = _cpu_times()[0], _own_cpu_seconds(), time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    busy = (_cpu_times()[0] - busy_before) / os.sysconf("SC_CLK_TCK")
    others = max(0.0, busy - (_own_cpu_seconds() - own_before))
    return result | {"others_cpu_share": round(others / (max(wall, 1e-9) * (os.cpu_count() or 1)), 3)}


@dataclass
class Rounds:
    """The runs of interleaved tools, round by round, and which of them the summary uses.

    A run is contended when other processes used more than `MAX_OTHERS_SHARE` of the CPUs during it; a round is
    clean when none of its runs is. The summary uses the clean rounds when there are at least `repeats` of them,
    else every round (and says so in `basis`), so every tool is summarised over the same rounds.
    """

    runs: dict[str, list[dict[str, Any]]]
    repeats: int

    @property
    def clean_rounds(self) -> list[int]:
        """Rounds in which no run was contended."""
        rounds = zip(*self.runs.values())
        return [runs[0]["round"] for runs in rounds if not any(run["contended"] for run in runs)]

    @property
    def uncontended(self) -> bool:
        """Whether the summary can use clean rounds only."""
        return len(self.clean_rounds) >= self.repeats

    @property
    def basis(self) -> str:
        """Which rounds the summary uses."""
        total = len(next(iter(self.runs.values())))
        if self.uncontended:
            return f"{len(self.clean_rounds)} uncontended rounds of {total}"
        return f"all {total} rounds (only {len(self.clean_rounds)} uncontended)"

    def kept(self, tool: str) -> list[dict[str, Any]]:
        """The runs of `tool` the summary uses."""
        if not self.uncontended:
            return self.runs[tool]
        return [run for run in self.runs[tool] if run["round"] in self.clean_rounds]

    def median(self, tool: str, key: str) -> float:
        """The median of `key` over the kept runs of `tool`."""
        return median([run[key] for run in self.kept(tool)])

    def ratios(self, top: str, bottom: str, key: str) -> list[float]:
        """`key` of tool `top` over `key` of tool `bottom`, round by round (kept rounds)."""
        return [ratio(one[key], other[key]) for one, other in zip(self.kept(top), self.kept(bottom))]

    def record(self) -> dict[str, Any]:
        """The basis and every run, for the JSON result."""
        return {"basis": self.basis, "runs": self.runs}


def interleaved(
    tools: dict[str, Callable[[], dict[str, Any]]], repeats: int, *, wait_s: float, figure: str, label: str = ""
) -> Rounds:
    """Run every tool once per round, reversing the order every other round, until `repeats` rounds were clean
    or `2 * repeats` rounds ran. `figure` names the key logged for each run."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in tools}
    clean = rounds = 0
    while clean < repeats and rounds < 2 * repeats:
        rounds += 1
        wait_for_quiet_cpu(timeout_s=wait_s)
        order = list(tools) if rounds % 2 else list(reversed(tools))
        results = {name: measured(tools[name]) for name in order}
        for name in tools:
            contended = results[name]["others_cpu_share"] > MAX_OTHERS_SHARE
            runs[name].append(results[name] | {"round": rounds, "contended": contended})
        clean += not any(runs[name][-1]["contended"] for name in tools)
        shown = ", ".join(
            f"{name} {_short(results[name][figure])} ({results[name]['others_cpu_share']:.0%})" for name in order
        )
        log(f"{label}round {rounds}: {figure} {shown} (others' CPU share)")
    return Rounds(runs, repeats)


def _short(value: float) -> str:
    """A figure for a log line: thousands separated above 1000, four significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _own_cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def log(message: str) -> None:
    """Progress on standard error, so standard output ends with the JSON result alone."""
    print(message, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """Print the benchmark's result as one JSON object on the last line of standard output."""
    print(json.dumps(result, default=_plain))


def environment() -> dict[str, Any]:
    """Facts that make a figure comparable: versions, commit, CPU count and load, torch threads."""
    import torch

    import deepwright

    return {
        "deepwright": deepwright.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
        "git": _git_revision(),
    }


def _git_revision() -> str:
    """The checkout's commit, with `-dirty` when the working tree has changes (what the figures measured)."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return completed.stdout.strip()


def mixed_config(*, threads: int = 2) -> dict[str, Any]:
    """The config deepwright gets for the mixed table, matching `torch_mixed.py`: 20 z-scored numbers and 3
    embedded categories → concat → Dense 128 ReLU → 10 classes; Adam 1e-3, batch 128, 10 epochs, 80/20 random
    split with no validation rows."""
    numbers = [{"name": f"num_{index}", "type": "number"} for index in range(20)]
    categories = [{"name": f"cat_{index}", "type": "category"} for index in range(3)]
    return {
        "input_features": numbers + categories,
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "dims": [128], "activation": "relu"},
        "preprocessing": {"split": {"method": "random", "fractions": [0.8, 0.2], "seed": 0}},
        "trainer": {
            "epochs": 10,
            "batch_size": 128,
            "optimizer": {"type": "adam", "lr": 0.001},
            "threads": threads,
        },
    }


def _plain(value: Any) -> Any:
    """JSON fallback for paths and numpy scalars."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)
