"""The server's inference queue: model calls one at a time, in arrival order, and single rows that arrive together
predicted in one call (micro-batching).

A request of one row waits at most `max_wait_ms` for others to join it, up to `max_batch` rows; rows that arrive
while the model is busy join the next call without waiting. A batch of single rows is predicted on the event
loop's own thread: for a few rows, handing the work to another thread costs more than the prediction (each hand-over
waits for the GIL). A request of many rows (or a CSV upload) is one call of its own, made on a worker thread so
that the server keeps reading requests meanwhile. A batch whose rows hold a bad value is predicted again row by
row, so each request gets its own answer or its own error. Every row's prediction is the one it gets alone, up to
float rounding: a matrix product over 16 rows may round its last bit differently from one over a single row.

The queue is bounded: a request is admitted (`admitted`) only while fewer than `max_queued_requests` requests and
`max_queued_rows` rows wait or run; past that it is refused with `Overloaded` (429, with a Retry-After estimated
from the rows per second served so far), and once the queue stops, with `Overloaded` (503). A request of many
rows is predicted in chunks (`chunk_size`), each a call of its own at the back of the queue, so that single rows
arriving meanwhile are answered between two chunks rather than after the whole request.

>>> queue = InferenceQueue(predictor.predict, max_batch=64, max_wait_ms=1.0)   # doctest: +SKIP
>>> await queue.start(); await queue.predict_row({"age": 52, "city": "Lyon"})   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from deepwright.errors import DeepwrightError

__all__ = ["InferenceQueue", "Overloaded"]


@dataclass
class _Call:
    """A whole request's function, run on the model thread as one call."""

    function: Callable[..., Any]
    args: tuple


_STOP = object()
_CHUNK_BYTES = 1 << 20  # request bytes per chunk of a many-row request (rows of long texts make smaller chunks)


class Overloaded(Exception):
    """A request the queue cannot take now: `status` 429 (too much queued) or 503 (stopping), and the seconds
    after which to try again."""

    def __init__(self, message: str, *, status: int, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class InferenceQueue:
    """Runs model calls on one worker thread, merging single rows that wait together (see the module docstring)."""

    def __init__(
        self,
        predict: Callable[[list[dict]], list[dict]],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 1.0,
        max_queued_requests: int = 1_000,
        max_queued_rows: int = 100_000,
        chunk_rows: int = 256,
    ):
        bounds = (max_batch, max_queued_requests, max_queued_rows, chunk_rows)
        if min(bounds) < 1 or not 0 <= max_wait_ms < math.inf:
            raise ValueError("max_batch, the queue's bounds and chunk_rows must be at least 1, max_wait_ms finite >= 0")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queued_requests = max_queued_requests
        self.max_queued_rows = max_queued_rows
        self.chunk_rows = chunk_rows
        self.model_calls = 0
        self.rows = 0
        self.queued_requests = 0  # admitted and not yet answered
        self.queued_rows = 0
        self.refused = 0
        self._served_rows = 0  # rows predicted by calls of their own, and the seconds those took: the throughput
        self._busy_s = 0.0
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepwright-model")
        self._pending: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the worker (in the running event loop)."""
        self._pending = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._serve(), name="deepwright-inference")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker and its thread."""
        self._stopping = True
        if self._worker is not None:
            self._pending.put_nowait((_STOP, None))
            await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    @contextlib.contextmanager
    def admitted(self, rows: int) -> Iterator[None]:
        """Hold a place in the queue for a request of `rows` rows while it is served, or raise `Overloaded` when
        the queue is full (429) or stopping (503)."""
        if self._stopping:
            raise Overloaded("the server is stopping; try again shortly", status=503, retry_after=5)
        if self.queued_requests >= self.max_queued_requests or self.queued_rows + rows > self.max_queued_rows:
            self.refused += 1
            raise Overloaded(
                f"the server is busy ({self.queued_requests:,} requests, {self.queued_rows:,} rows queued; at most "
                f"{self.max_queued_requests:,} and {self.max_queued_rows:,}); try again later",
                status=429,
                retry_after=self._retry_after(),
            )
        self.queued_requests += 1
        self.queued_rows += rows
        try:
            yield
        finally:
            self.queued_requests -= 1
            self.queued_rows -= rows

    def chunk_size(self, rows: int, body_bytes: int) -> int:
        """Rows per model call for a request of `rows` rows sent in `body_bytes` bytes: at most `chunk_rows`,
        fewer when its rows are large.

        >>> InferenceQueue(print, chunk_rows=256).chunk_size(10_000, 30 << 20)   # 3 kB a row
        256
        >>> InferenceQueue(print, chunk_rows=256).chunk_size(100, 50 << 20)      # 0.5 MB a row
        2
        """
        per_row = body_bytes / max(rows, 1)
        return max(1, min(self.chunk_rows, int(_CHUNK_BYTES // max(per_row, 1))))

    def _retry_after(self) -> int:
        """Seconds until the queued rows are likely served, from the throughput so far (1 to 60)."""
        rate = self._served_rows / self._busy_s if self._busy_s > 0 else 1_000.0
        return int(min(60, max(1, math.ceil(self.queued_rows / max(rate, 1.0)))))

    async def predict_row(self, row: dict) -> dict:
        """The prediction of one row, made together with the other single rows waiting at the same time."""
        return await self._submit(row)

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` on the model thread, as one call of its own (a request of many rows)."""
        return await self._submit(_Call(function, args))

    async def _submit(self, item: Any) -> Any:
        if self._pending is None:
            raise RuntimeError("the inference queue is not started")
        if self._stopping and self._worker is None:
            raise Overloaded("the server is stopping; try again shortly", status=503, retry_after=5)
        future = asyncio.get_running_loop().create_future()
        self._pending.put_nowait((item, future))
        return await future

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._pending.get()
            if first[0] is _STOP:
                await self._drain(loop)  # what was queued behind the stop mark
                return
            if isinstance(first[0], _Call):
                await self._run_call(loop, *first)
                continue
            if self.max_wait and self._pending.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.max_wait)
            batch, after = [first], None
            while len(batch) < self.max_batch and not self._pending.empty():
                item = self._pending.get_nowait()
                if isinstance(item[0], dict):
                    batch.append(item)
                else:
                    after = item  # a whole request or the stop mark: served after this batch, in order
                    break
            await self._run_batch(loop, batch)
            if after is not None:
                if after[0] is _STOP:
                    await self._drain(loop)
                    return
                await self._run_call(loop, *after)

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve whatever is still queued (nothing new arrives once the server stops accepting)."""
        while not self._pending.empty():
            item = self._pending.get_nowait()
            if isinstance(item[0], _Call):
                await self._run_call(loop, *item)
            elif item[0] is not _STOP:
                await self._run_batch(loop, [item])

    async def _run_call(self, loop: asyncio.AbstractEventLoop, call: _Call, future: asyncio.Future) -> None:
        self.model_calls += 1
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(self._executor, call.function, *call.args)
        except BaseException as error:  # the caller's request gets the error, whatever it is
            _settle(future, error=error)
            if not isinstance(error, Exception):
                raise
        else:
            self._busy_s += time.perf_counter() - started
            self._served_rows += len(call.args[0]) if call.args and hasattr(call.args[0], "__len__") else 1
            _settle(future, result=result)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[dict, asyncio.Future]]) -> None:
        self.model_calls += 1
        self.rows += len(batch)
        rows = [row for row, _ in batch]
        try:
            results = self._predict_rows(rows)  # on the loop's thread (see the module docstring)
        except Exception as error:  # a bug, not a bad row: every request of the batch gets it
            for _, future in batch:
                _settle(future, error=error)
        else:
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    _settle(future, error=result)
                else:
                    _settle(future, result=result)
        await asyncio.sleep(0)  # let the loop read the requests that arrived meanwhile

    def _predict_rows(self, rows: list[dict]) -> list[Any]:
        """Predictions of `rows` in one call; when a row is bad, each row alone (its error as its result)."""
        try:
            return self.predict(rows)
        except DeepwrightError as error:
            if len(rows) == 1:
                return [error]
        results: list[Any] = []
        for row in rows:
            try:
                results.append(self.predict([row])[0])
            except DeepwrightError as error:
                results.append(error)
        return results


def _settle(future: asyncio.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    """Give `future` its result or error, unless its request was abandoned (the client went away)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
