"""Tensor tables and batches: a dict {name → column} whose columns share their first (row) axis.

A column is a tensor, or a *lazy* column (any object with `len()` whose `column[indices]` returns a tensor,
such as images decoded on access). A table of tensors is turned into tensors once; each batch then gathers its
rows of a shuffled order (unshuffled batches are slices, which are views and cost nothing). A table with a lazy
column is batched by a DataLoader whose worker processes do the decoding.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from deepwright.errors import DataError, DeepwrightError

__all__ = ["TensorTable", "batch_bounds", "is_lazy", "iterate_batches", "num_rows", "to_device", "to_tensors"]

TensorTable = dict[str, Any]  # name → torch.Tensor, or a lazy column
MAX_WORKERS = 4


def is_lazy(column: Any) -> bool:
    """Whether a table column is decoded on access rather than held as a tensor."""
    return not isinstance(column, torch.Tensor)


def to_tensors(arrays: Mapping[str, Any], device: torch.device | str = "cpu") -> TensorTable:
    """Numpy arrays → tensors on `device` (sharing memory with the arrays on the CPU); lazy columns as they are."""
    return {
        name: torch.from_numpy(np.ascontiguousarray(array)).to(device) if isinstance(array, np.ndarray) else array
        for name, array in arrays.items()
    }


def to_device(table: TensorTable, device: torch.device | str) -> TensorTable:
    """The table with its tensors on `device` (lazy columns decode on the CPU; their batches move later)."""
    return {name: column if is_lazy(column) else column.to(device) for name, column in table.items()}


def num_rows(table: Mapping[str, Any]) -> int:
    """Rows in a table (0 for an empty one)."""
    return len(next(iter(table.values()))) if table else 0


def iterate_batches(
    table: TensorTable,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    skip: int = 0,
    shard: tuple[int, int] | None = None,
) -> Iterator[TensorTable]:
    """Yield the table in batches of `batch_size` rows, shuffled with `generator` when one is given, leaving out
    the first `skip` batches (a run resumed mid-epoch; the order is drawn all the same).

    A final batch of a single row joins the one before it, since batch norm cannot train on one row. Batches of
    a table with lazy columns are assembled in worker processes and moved to `device`.

    With `shard` (rank, world size), `batch_size` is the global batch and this rank gets the rows at positions
    rank, rank + world size, … of each one (`DistributedSampler`'s interleaving): every rank shuffles with the
    same generator, so the ranks' batches together are the one-process batches. A final batch too small to give
    every rank a row joins the one before it.

    >>> table = {"x": torch.arange(5)}
    >>> [batch["x"].tolist() for batch in iterate_batches(table, 2)]
    [[0, 1], [2, 3, 4]]
    >>> [batch["x"].tolist() for batch in iterate_batches(table, 2, shard=(1, 2))]
    [[1], [3]]
    """
    total = num_rows(table)
    rank, world_size = shard if shard is not None else (0, 1)
    bounds = batch_bounds(total, batch_size, smallest=max(2, world_size))[skip:]
    order = torch.randperm(total, generator=generator) if generator is not None else None
    if world_size > 1:
        bounds, order = _shard_bounds(bounds, order if order is not None else torch.arange(total), rank, world_size)
    if any(is_lazy(column) for column in table.values()):
        yield from _worker_batches(table, bounds, order, device)
        return
    if order is None:
        for start, end in bounds:
            yield {name: tensor[start:end] for name, tensor in table.items()}
        return
    order = order.to(next(iter(table.values())).device)
    for start, end in bounds:
        rows = order[start:end]
        yield {name: tensor[rows] for name, tensor in table.items()}


def batch_bounds(total: int, batch_size: int, *, smallest: int = 2) -> list[tuple[int, int]]:
    """(start, end) of each batch of `total` rows; a final batch of fewer than `smallest` rows joins the batch
    before it.

    >>> batch_bounds(5, 2)
    [(0, 2), (2, 5)]
    """
    starts = list(range(0, total, batch_size))
    if len(starts) > 1 and total - starts[-1] < smallest:
        starts.pop()
    return list(zip(starts, [*starts[1:], total]))


def _shard_bounds(
    bounds: list[tuple[int, int]], order: torch.Tensor, rank: int, world_size: int
) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """This rank's rows of each global batch of `order`, laid end to end, and the bounds of its batches there."""
    pieces = [order[start:end][rank::world_size] for start, end in bounds]
    ends = torch.tensor([len(piece) for piece in pieces]).cumsum(0).tolist()
    shard_order = torch.cat(pieces) if pieces else order[:0]
    return list(zip([0, *ends[:-1]], ends)), shard_order


class _Rows:
    """Picklable batch maker for DataLoader workers: row indices → a batch of every column.

    A `DeepwrightError` (a file that fails to decode) comes back as its message, since DataLoader would
    re-raise it wrapped in a worker traceback; the main process raises it again as a `DataError`.
    """

    def __init__(self, table: TensorTable) -> None:
        self.table = {name: column.cpu() if not is_lazy(column) else column for name, column in table.items()}

    def __call__(self, indices: torch.Tensor) -> TensorTable | str:
        try:
            return {name: column[indices] for name, column in self.table.items()}
        except DeepwrightError as error:
            return str(error)


def _worker_batches(
    table: TensorTable, bounds: list[tuple[int, int]], order: torch.Tensor | None, device: Any
) -> Iterator[TensorTable]:
    from torch.utils.data import DataLoader

    order = order if order is not None else torch.arange(num_rows(table))
    index_batches = [order[start:end] for start, end in bounds]
    workers = min(MAX_WORKERS, os.cpu_count() or 1, len(index_batches))
    loader = DataLoader(
        index_batches,
        batch_size=None,
        collate_fn=_Rows(table),
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        generator=torch.Generator(),  # the workers' seeds are not drawn from the global generator (exact resume)
    )
    for batch in loader:
        if isinstance(batch, str):
            raise DataError(batch)
        yield {name: tensor.to(device) for name, tensor in batch.items()} if device is not None else batch
