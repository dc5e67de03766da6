"""Progress on stderr: a bar or a line per epoch for the epoch loop, a line per estimate for the step loop."""

from __future__ import annotations

import sys
import time

import torch

from deepwright.evaluation.report import distinct_metrics

__all__ = ["EpochProgress", "print_step_record"]


class EpochProgress:
    """A rich progress bar on a terminal (loss and samples/s, redrawn at most 5 times a second), else one line
    per epoch; nothing when disabled. Use it as a context around the epochs."""

    def __init__(self, epochs: int, rows_per_epoch: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.rows_per_epoch = rows_per_epoch
        self.interactive = enabled and sys.stderr.isatty()
        self._progress = None
        self._task = None
        self._next_draw = 0.0
        self._next_line = 0.0
        self._epoch_started = 0.0

    def __enter__(self) -> EpochProgress:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[metric]}"),
                TextColumn("{task.fields[speed]} samples/s"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)

    def start_epoch(self, epoch: int) -> None:
        """Start the bar (or the clock) of epoch `epoch` (counted from 1)."""
        self._epoch_started = time.perf_counter()
        self._next_draw = self._epoch_started + 0.2
        if self._progress is not None:
            self._task = self._progress.add_task(
                "train",
                total=self.rows_per_epoch,
                epoch=epoch,
                epochs=self.epochs,
                loss="…",
                metric="",
                speed="…",
            )

    def advance(self, running_loss: torch.Tensor, seen: int) -> None:
        """Show `seen` rows done with their summed loss `running_loss`, at most 5 times a second."""
        if self._progress is None:
            return
        now = time.perf_counter()
        if now < self._next_draw and seen < self.rows_per_epoch:
            return
        self._next_draw = now + 0.2
        speed = seen / max(now - self._epoch_started, 1e-9)
        self._progress.update(
            self._task, completed=seen, loss=f"{float(running_loss) / seen:.4f}", speed=f"{speed:,.0f}"
        )

    def end_epoch(self, record: dict[str, float]) -> None:
        """Show the epoch's `record`: its loss and first metrics on the bar, or one line (about one a second)."""
        if not self.enabled:
            return
        metric = "  ".join(f"{key} {record[key]:.4f}" for key in distinct_metrics(record)[:3])
        if self._progress is not None:
            self._progress.update(self._task, metric=metric, loss=f"{record['train_loss']:.4f}")
            return
        now = time.perf_counter()
        if record["epoch"] not in (1, self.epochs) and now < self._next_line:
            return  # without a terminal, print about one line a second
        self._next_line = now + 1.0
        print(
            f"epoch {record['epoch']}/{self.epochs}  loss {record['train_loss']:.4f}  {metric}  "
            f"{record['samples_per_second']:,.0f} samples/s",
            file=sys.stderr,
        )


def print_step_record(record: dict, max_steps: int) -> None:
    """One line on stderr for a step loop's `record`: the step, the losses, the rate and the speed."""
    validation = ""
    if "val_loss" in record:
        validation = f"  val loss {record['val_loss']:.4f}  perplexity {record['val_perplexity']:.2f}"
    print(
        f"step {record['step']}/{max_steps}  train loss {record['train_loss']:.4f}{validation}  "
        f"lr {record['lr']:.2e}  {record['tokens_per_second']:,.0f} tokens/s",
        file=sys.stderr,
        flush=True,
    )
