"""Tensor tables and batches: conversion, batch boundaries, seeded shuffling."""

from __future__ import annotations

import numpy as np
import torch

from deepwright.data.batches import iterate_batches, num_rows, to_tensors


def test_to_tensors_keeps_dtypes_and_shapes() -> None:
    table = to_tensors({"x": np.zeros((4, 3), dtype=np.float32), "y": np.arange(4)})
    assert table["x"].dtype == torch.float32
    assert table["x"].shape == (4, 3)
    assert table["y"].dtype == torch.int64
    assert num_rows(table) == 4
    assert num_rows({}) == 0


def test_batches_cover_every_row_in_order_without_a_generator() -> None:
    table = {"x": torch.arange(10)}
    batches = [batch["x"].tolist() for batch in iterate_batches(table, 4)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_final_single_row_joins_the_previous_batch() -> None:
    batches = [batch["x"].tolist() for batch in iterate_batches({"x": torch.arange(9)}, 4)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
    assert [b["x"].tolist() for b in iterate_batches({"x": torch.arange(1)}, 4)] == [[0]]


def test_shuffling_is_seeded_and_keeps_columns_aligned() -> None:
    table = {"x": torch.arange(20), "y": torch.arange(20) * 10}

    def order(seed: int) -> list[int]:
        batches = list(iterate_batches(table, 8, generator=torch.Generator().manual_seed(seed)))
        for batch in batches:
            assert torch.equal(batch["y"], batch["x"] * 10)
        return torch.cat([batch["x"] for batch in batches]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(20))
