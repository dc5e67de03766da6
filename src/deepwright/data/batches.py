"""Tensor tables and batches: a dict {name → tensor} whose tensors share their first (row) axis.

The whole table is turned into tensors once; an epoch shuffles it with one gather and then yields
contiguous slices, which are views and cost nothing to make.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch

__all__ = ["TensorTable", "batch_bounds", "iterate_batches", "num_rows", "to_tensors"]

TensorTable = dict[str, torch.Tensor]


def to_tensors(arrays: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> TensorTable:
    """Numpy arrays → tensors on `device` (sharing memory with the arrays on the CPU)."""
    return {name: torch.from_numpy(np.ascontiguousarray(array)).to(device) for name, array in arrays.items()}


def num_rows(table: Mapping[str, torch.Tensor]) -> int:
    """Rows in a tensor table (0 for an empty one)."""
    return len(next(iter(table.values()))) if table else 0


def iterate_batches(
    table: TensorTable, batch_size: int, *, generator: torch.Generator | None = None
) -> Iterator[TensorTable]:
    """Yield the table in batches of `batch_size` rows, shuffled with `generator` when one is given.

    A final batch of a single row joins the one before it, since batch norm cannot train on one row.

    >>> table = {"x": torch.arange(5)}
    >>> [batch["x"].tolist() for batch in iterate_batches(table, 2)]
    [[0, 1], [2, 3, 4]]
    """
    total = num_rows(table)
    if generator is not None:
        order = torch.randperm(total, generator=generator).to(next(iter(table.values())).device)
        table = {name: tensor[order] for name, tensor in table.items()}
    for start, end in batch_bounds(total, batch_size):
        yield {name: tensor[start:end] for name, tensor in table.items()}


def batch_bounds(total: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch of `total` rows; a final single row joins the batch before it.

    >>> batch_bounds(5, 2)
    [(0, 2), (2, 5)]
    """
    starts = list(range(0, total, batch_size))
    if len(starts) > 1 and total - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], total]))
