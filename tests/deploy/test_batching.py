"""The inference queue: single rows that wait together are predicted in one call, each request gets its own answer
(or its own error), whole requests keep their turn, and stopping finishes what is queued."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest

from deepwright.deploy.batching import InferenceQueue
from deepwright.deploy.predictor import Predictor
from deepwright.errors import DataError
from tests.deploy.serving import Served

T = TypeVar("T")


class Recorder:
    """A stand-in predict: doubles each row's x, records every call's rows, and refuses x < 0."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, rows: list[dict]) -> list[dict]:
        self.calls.append([row["x"] for row in rows])
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        for position, row in enumerate(rows):
            if row["x"] < 0:
                raise DataError("x must not be negative", column="x", row=position + 1)
        return [{"y": 2 * row["x"]} for row in rows]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def started(queue: InferenceQueue) -> InferenceQueue:
    await queue.start()
    return queue


def test_rows_that_arrive_together_share_one_call() -> None:
    recorder = Recorder()

    async def scenario() -> list[dict]:
        queue = await started(InferenceQueue(recorder, max_batch=64, max_wait_ms=50))
        results = await asyncio.gather(*(queue.predict_row({"x": x}) for x in range(10)))
        await queue.stop()
        return results

    assert run(scenario()) == [{"y": 2 * x} for x in range(10)]
    assert recorder.calls == [list(range(10))]
    assert recorder.threads == {threading.current_thread().name}  # single rows: on the loop's own thread


def test_batches_hold_at_most_max_batch_rows() -> None:
    recorder = Recorder()

    async def scenario() -> list[dict]:
        queue = await started(InferenceQueue(recorder, max_batch=4, max_wait_ms=20))
        results = await asyncio.gather(*(queue.predict_row({"x": x}) for x in range(10)))
        await queue.stop()
        return results

    assert run(scenario()) == [{"y": 2 * x} for x in range(10)]
    assert [len(call) for call in recorder.calls] == [4, 4, 2]
    assert [x for call in recorder.calls for x in call] == list(range(10))


def test_rows_arriving_while_the_model_is_busy_join_the_next_call() -> None:
    recorder = Recorder(delay=0.05)

    async def scenario() -> None:
        queue = await started(InferenceQueue(recorder, max_batch=64, max_wait_ms=0))
        first = asyncio.ensure_future(queue.predict_row({"x": 0}))
        await asyncio.sleep(0.01)  # the first call is running now
        later = [asyncio.ensure_future(queue.predict_row({"x": x})) for x in range(1, 6)]
        await asyncio.gather(first, *later)
        await queue.stop()

    run(scenario())
    assert recorder.calls == [[0], [1, 2, 3, 4, 5]]


def test_a_bad_row_fails_alone() -> None:
    recorder = Recorder()

    async def scenario() -> list:
        queue = await started(InferenceQueue(recorder, max_batch=64, max_wait_ms=30))
        results = await asyncio.gather(*(queue.predict_row({"x": x}) for x in (1, -1, 2)), return_exceptions=True)
        await queue.stop()
        return results

    good, bad, other = run(scenario())
    assert good == {"y": 2} and other == {"y": 4}
    assert isinstance(bad, DataError) and bad.row == 1 and bad.column == "x"  # row 1 of its own request
    assert recorder.calls == [[1, -1, 2], [1], [-1], [2]]


def test_a_bug_reaches_every_request_of_its_batch() -> None:
    def broken(rows: list[dict]) -> list[dict]:
        raise ZeroDivisionError("bug")

    async def scenario() -> list:
        queue = await started(InferenceQueue(broken, max_wait_ms=20))
        results = await asyncio.gather(*(queue.predict_row({"x": x}) for x in range(3)), return_exceptions=True)
        await queue.stop()
        return results

    assert all(isinstance(result, ZeroDivisionError) for result in run(scenario()))


def test_whole_requests_keep_their_turn() -> None:
    recorder = Recorder()

    async def scenario() -> list:
        queue = await started(InferenceQueue(recorder, max_batch=64, max_wait_ms=30))
        return await asyncio.gather(
            queue.predict_row({"x": 1}),
            queue.run(recorder, [{"x": 10}, {"x": 11}]),
            queue.predict_row({"x": 2}),
        ), await queue.stop()

    results, _ = run(scenario())
    assert results == [{"y": 2}, [{"y": 20}, {"y": 22}], {"y": 4}]
    assert recorder.calls == [[1], [10, 11], [2]]
    assert "deepwright-model_0" in recorder.threads  # a whole request: on the worker thread


def test_stop_answers_what_is_queued() -> None:
    recorder = Recorder(delay=0.02)

    async def scenario() -> list:
        queue = await started(InferenceQueue(recorder, max_batch=2, max_wait_ms=0))
        pending = [asyncio.ensure_future(queue.predict_row({"x": x})) for x in range(5)]
        await asyncio.sleep(0)
        await queue.stop()
        return [future.result() for future in pending]

    assert run(scenario()) == [{"y": 2 * x} for x in range(5)]


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        InferenceQueue(Recorder(), max_batch=0)
    with pytest.raises(RuntimeError, match="not started"):
        run(InferenceQueue(Recorder()).predict_row({"x": 1}))


def test_batched_predictions_equal_unbatched_ones(served: Served) -> None:
    """A real model: each row predicted inside a batch of concurrent rows gets the prediction it gets alone."""
    predictor = Predictor.from_bundle(served.bundle)
    rows = served.rows[:24]
    alone = [predictor.predict(row) for row in rows]
    calls: list[int] = []

    def predict(batch: list[dict]) -> list[dict]:
        calls.append(len(batch))
        return predictor.predict(batch)

    async def scenario() -> list[dict]:
        queue = await started(InferenceQueue(predict, max_batch=16, max_wait_ms=50))
        results = await asyncio.gather(*(queue.predict_row(row) for row in rows))
        await queue.stop()
        return results

    batched = run(scenario())
    assert calls == [16, 8]
    assert [row["label_prediction"] for row in batched] == [row["label_prediction"] for row in alone]
    difference = np.abs([a["label_probability"] - b["label_probability"] for a, b in zip(batched, alone)]).max()
    assert difference <= 1e-6  # a matrix product over 16 rows may round its last bit differently
