"""Batch prediction of a data file, chunk by chunk: memory stays bounded by the chunk size, whatever the file's.

Each chunk of rows (see `deepwright.data.stream`) is predicted and appended to the output CSV, which is written
under a temporary name and renamed at the end, so a failure half-way leaves no partial file. On a terminal, a
progress bar on standard error shows how far through the file the predictions are.

>>> predict_file(predictor, "big.csv", "predictions.csv", chunk_rows=10_000)   # doctest: +SKIP
1000000
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from deepwright.data.stream import read_chunks
from deepwright.errors import DataError

__all__ = ["predict_file"]


def predict_file(
    predictor: Any,
    source: Any,
    output: str | Path | None,
    *,
    chunk_rows: int = 10_000,
    progress: bool = True,
) -> int:
    """Predict every row of `source` in chunks of `chunk_rows` and write the predictions as CSV to `output`
    (standard output when None); return the number of rows."""
    rows = 0
    chunks = read_chunks(source, columns=predictor.features.input_names, chunk_rows=chunk_rows)
    label = Path(source).name if isinstance(source, (str, Path)) else "rows"
    with _output(output) as handle, _Progress(label, enabled=progress) as bar:
        for chunk in chunks:
            predictions = predictor.predict(chunk.table)
            predictions.to_csv(handle, index=False, header=rows == 0, lineterminator="\n")
            rows += len(predictions)
            bar.update(chunk.done, rows)
        if rows == 0:
            raise DataError("the file has a header but no data rows", source=str(source))
    return rows


@contextlib.contextmanager
def _output(output: str | Path | None) -> Iterator[TextIO]:
    """A text handle on `output`, written atomically; standard output when None."""
    if output is None:
        yield sys.stdout
        return
    from deepwright.data.io import atomic_path

    with atomic_path(output) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
        yield handle


class _Progress:
    """A rich progress bar on standard error when it is a terminal (redrawn at most 5 times a second); else
    nothing."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.interactive = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._next_draw = 0.0

    def __enter__(self) -> _Progress:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("predicting {task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=1.0, rows=0)
        return self

    def update(self, done: float, rows: int) -> None:
        """Show that `done` (0..1) of the file, `rows` rows, are predicted."""
        now = time.perf_counter()
        if self._bar is None or (now < self._next_draw and done < 1.0):
            return
        self._next_draw = now + 0.2
        self._bar.update(self._task, completed=done, rows=rows)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
