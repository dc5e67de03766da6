"""`Distributed`'s sharding and collectives: the ranks' shards of every batch are the one-process batch, the weighted
shard losses average to the whole batch's mean loss, and the collectives work across two real gloo processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as multiprocessing

from deepwright.data.batches import iterate_batches
from deepwright.training.distributed import Distributed
from tests.distributed.conftest import free_port


def shuffled_batches(total: int, batch_size: int, shard: tuple[int, int] | None = None) -> list[list[int]]:
    table = {"x": torch.arange(total)}
    generator = torch.Generator().manual_seed(1)
    return [batch["x"].tolist() for batch in iterate_batches(table, batch_size, generator=generator, shard=shard)]


@pytest.mark.parametrize(("total", "batch_size"), [(23, 6), (17, 8), (40, 12)])
def test_two_ranks_shards_are_the_one_process_batches(total: int, batch_size: int) -> None:
    single = shuffled_batches(total, batch_size)
    first, second = (shuffled_batches(total, batch_size, (rank, 2)) for rank in (0, 1))
    assert len(first) == len(second) == len(single)
    for batch, mine, theirs in zip(single, first, second):
        assert sorted(mine + theirs) == sorted(batch)


@pytest.mark.parametrize(("total", "batch_size"), [(40, 12), (9, 8)])
def test_every_rank_of_four_gets_rows_of_every_batch_and_each_row_once(total: int, batch_size: int) -> None:
    shards = [shuffled_batches(total, batch_size, (rank, 4)) for rank in range(4)]
    assert len({len(shard) for shard in shards}) == 1  # the same number of steps on every rank
    assert all(batch for shard in shards for batch in shard)  # a last batch too small to share joined the one before
    assert sorted(row for shard in shards for batch in shard for row in batch) == list(range(total))


@pytest.mark.parametrize(("total", "batch_size"), [(23, 6), (7, 4), (16, 8)])
def test_weighted_shard_losses_average_to_the_batch_mean(total: int, batch_size: int) -> None:
    world_size = 2
    losses = torch.rand(total, dtype=torch.float64)
    table = {"x": torch.arange(total)}
    ranks = [Distributed(rank=rank, world_size=world_size) for rank in range(world_size)]
    scales = [rank.loss_scales(total, batch_size) for rank in ranks]
    shards = [list(iterate_batches(table, batch_size, shard=(rank, world_size))) for rank in range(world_size)]
    single = list(iterate_batches(table, batch_size))
    for index, batch in enumerate(single):
        averaged = (
            sum(scales[rank][index] * losses[shards[rank][index]["x"]].mean() for rank in range(world_size))
            / world_size
        )  # what DDP's mean of the ranks' gradients does to their losses
        assert float(averaged) == pytest.approx(float(losses[batch["x"]].mean()), rel=1e-12)


def _collectives(rank: int, world_size: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    distributed = Distributed.start("cpu")
    start, end = distributed.span(5)
    gathered = distributed.all_gather(torch.arange(5.0)[start:end].unsqueeze(1))  # 3 rows, then 2
    total = distributed.all_reduce_sum(torch.tensor([rank + 1.0]))
    shared = distributed.broadcast_object({"run": f"runs/from-rank-{rank}"})
    Path(folder, f"{rank}.txt").write_text(f"{gathered.squeeze(1).tolist()} {total.item()} {shared['run']}")
    torch.distributed.destroy_process_group()


def test_collectives_across_two_gloo_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    multiprocessing.start_processes(_collectives, args=(2, str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in (0, 1):
        assert (tmp_path / f"{rank}.txt").read_text() == "[0.0, 1.0, 2.0, 3.0, 4.0] 3.0 runs/from-rank-0"
