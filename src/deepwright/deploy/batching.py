"""The server's inference queue: model calls one at a time, in arrival order, and single rows that arrive together
predicted in one call (micro-batching).

A request of one row waits at most `max_wait_ms` for others to join it, up to `max_batch` rows; rows that arrive
while the model is busy join the next call without waiting. A batch of single rows is predicted on the event
loop's own thread: for a few rows, handing the work to another thread costs more than the prediction (each hand-over
waits for the GIL). A request of many rows (or a CSV upload) is one call of its own, made on a worker thread so
that the server keeps reading requests meanwhile. A batch whose rows hold a bad value is predicted again row by
row, so each request gets its own answer or its own error. Every row's prediction is the one it gets alone, up to
float rounding: a matrix product over 16 rows may round its last bit differently from one over a single row.

>>> queue = InferenceQueue(predictor.predict, max_batch=64, max_wait_ms=1.0)   # doctest: +SKIP
>>> await queue.start(); await queue.predict_row({"age": 52, "city": "Lyon"})   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from deepwright.errors import DeepwrightError

__all__ = ["InferenceQueue"]


@dataclass
class _Call:
    """A whole request's function, run on the model thread as one call."""

    function: Callable[..., Any]
    args: tuple


_STOP = object()


class InferenceQueue:
    """Runs model calls on one worker thread, merging single rows that wait together (see the module docstring)."""

    def __init__(self, predict: Callable[[list[dict]], list[dict]], *, max_batch: int = 64, max_wait_ms: float = 1.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_ms at least 0")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.model_calls = 0
        self.rows = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepwright-model")
        self._pending: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the worker (in the running event loop)."""
        self._pending = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._serve(), name="deepwright-inference")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker and its thread."""
        if self._worker is not None:
            self._pending.put_nowait((_STOP, None))
            await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def predict_row(self, row: dict) -> dict:
        """The prediction of one row, made together with the other single rows waiting at the same time."""
        return await self._submit(row)

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` on the model thread, as one call of its own (a request of many rows)."""
        return await self._submit(_Call(function, args))

    async def _submit(self, item: Any) -> Any:
        if self._pending is None:
            raise RuntimeError("the inference queue is not started")
        future = asyncio.get_running_loop().create_future()
        self._pending.put_nowait((item, future))
        return await future

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._pending.get()
            if first[0] is _STOP:
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
        try:
            result = await loop.run_in_executor(self._executor, call.function, *call.args)
        except BaseException as error:  # the caller's request gets the error, whatever it is
            _settle(future, error=error)
            if not isinstance(error, Exception):
                raise
        else:
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
