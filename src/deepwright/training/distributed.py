"""Several processes training one model on `torch.distributed`: who this process is, and what the ranks share.

torchrun (`torch.distributed.run`, which `deepwright train --nproc N` starts) gives every worker its place in
the environment: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`.
`Distributed.start` reads them (one process when they are absent) and joins the process group: gloo on the CPU,
NCCL on CUDA (one GPU per local rank), with a finite timeout (`DEEPWRIGHT_DISTRIBUTED_TIMEOUT` seconds, default
120) so that a rank that stops answering ends the run rather than hanging it.

The loops ask it for this rank's share of a batch (`per_rank_batch`, `shard`), to wrap the model
(`DistributedDataParallel`, or FSDP2's `fully_shard` for `trainer.strategy: fsdp`), and to combine what the ranks
computed (`all_reduce_sum`, `all_gather`, `broadcast_object`). One process needs none of it: every helper then
returns its input.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepwright.data.batches import batch_bounds
from deepwright.errors import ConfigError, DeepwrightError
from deepwright.training.device import training_device

__all__ = ["ERROR_DIR_ENV", "TIMEOUT_ENV", "Distributed", "worker"]

TIMEOUT_ENV = "DEEPWRIGHT_DISTRIBUTED_TIMEOUT"
ERROR_DIR_ENV = "DEEPWRIGHT_ERROR_DIR"  # set by the launcher: where a worker leaves its DeepwrightError's message
DEFAULT_TIMEOUT_SECONDS = 120.0
EXIT_USER_ERROR = 2  # the command line's status for a DeepwrightError


@dataclass
class Distributed:
    """This process's place among the ranks of a run, and the collectives the training loops use.

    >>> one = Distributed()
    >>> one.is_main, one.world_size, one.per_rank_batch(12, "trainer.batch_size")
    (True, 1, 12)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None  # "gloo" or "nccl"; None for one process

    @classmethod
    def start(cls, device_choice: str = "auto") -> Distributed:
        """This process's `Distributed`, from torchrun's environment, its process group joined; the device is
        `trainer.device`'s choice (on CUDA, the GPU of this local rank)."""
        device = training_device(device_choice)
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls(device=device)
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise ConfigError(f"trainer.device {device.type!r} cannot train in several processes; use cuda or cpu")
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():  # `worker` leaves it at the end
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=_timeout_seconds()))
        return cls(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=local_rank,
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
            device=device,
            backend=backend,
        )

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one rank that writes (run directory, log, checkpoints, plots, bundle)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether there are several ranks."""
        return self.world_size > 1

    def per_rank_batch(self, batch_size: int, key: str) -> int:
        """This rank's share of a global batch of `batch_size`; a `ConfigError` naming `key` when the ranks
        cannot share it evenly."""
        if batch_size % self.world_size:
            multiple = -(-batch_size // self.world_size) * self.world_size
            raise ConfigError(
                f"{key} {batch_size} does not divide among {self.world_size} processes; the global batch is shared "
                f"evenly, so give a multiple of {self.world_size} (such as {multiple}) or another process count"
            )
        return batch_size // self.world_size

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch: positions rank, rank + world size, … (as `DistributedSampler`
        interleaves), so that the ranks' shards together are the batch.

        >>> Distributed(rank=1, world_size=2).shard(torch.arange(5)).tolist()
        [1, 3]
        """
        return rows[self.rank :: self.world_size] if self.enabled else rows

    def shard_of(self) -> tuple[int, int] | None:
        """(rank, world size) for `iterate_batches(shard=...)`, or None for one process."""
        return (self.rank, self.world_size) if self.enabled else None

    def loss_scales(self, total: int, batch_size: int) -> list[float]:
        """For each global batch of an epoch over `total` rows: what this rank's mean loss is multiplied by, so that
        the ranks' averaged gradient is the whole batch's mean (its rows · world size / the batch's rows; 1 except
        in a last batch that does not divide evenly).

        >>> Distributed(rank=0, world_size=2).loss_scales(7, 4)
        [1.0, 1.3333333333333333]
        """
        bounds = batch_bounds(total, batch_size, smallest=max(2, self.world_size))
        return [
            len(range(start + self.rank, end, self.world_size)) * self.world_size / (end - start)
            for start, end in bounds
        ]

    def span(self, total: int) -> tuple[int, int]:
        """(start, end) of this rank's contiguous share of `total` rows (the first ranks take one more when the
        rows do not divide evenly), for work that is gathered back in row order.

        >>> [Distributed(rank=rank, world_size=2).span(5) for rank in (0, 1)]
        [(0, 3), (3, 5)]
        """
        size, extra = divmod(total, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return start, start + size + (self.rank < extra)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of `tensor` over the ranks (in place; `tensor` itself for one process)."""
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's `tensor` concatenated along the first axis in rank order; the ranks' tensors may differ in
        length along it (but not in their other axes)."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        length = torch.tensor([tensor.shape[0]], device=tensor.device)
        lengths = [torch.zeros_like(length) for _ in range(self.world_size)]
        dist.all_gather(lengths, length)
        longest = int(max(lengths))
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        pieces = [torch.zeros_like(padded) for _ in range(self.world_size)]
        dist.all_gather(pieces, padded.contiguous())
        return torch.cat([piece[: int(size)] for piece, size in zip(pieces, lengths)])

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object; only rank 0's is read), on every rank."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        holder = [value if self.is_main else None]
        dist.broadcast_object_list(holder, src=0, device=self.device if self.backend == "nccl" else None)
        return holder[0]

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def wrap(self, model: nn.Module, strategy: str = "ddp") -> nn.Module:
        """The module that trains `model` across the ranks: `DistributedDataParallel` (gradients averaged over the
        ranks after each backward pass), or for `strategy` 'fsdp' `model` itself with its parameters sharded by
        FSDP2 (each child block that `model.blocks` lists, then the rest; in place, so an optimizer must be built
        after, and a sharded model is returned as it is). One process trains `model` as it is."""
        if not self.enabled:
            return model
        if strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            if _is_sharded(model):
                return model
            for block in getattr(model, "blocks", ()):
                fully_shard(block)
            return fully_shard(model)
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """`model`'s whole state on the CPU, on rank 0 (gathered from every rank's shards under FSDP; the other ranks
        get an empty dict then). Every rank must call it."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if not self.enabled or not _is_sharded(model):
            return {name: tensor.cpu() for name, tensor in model.state_dict().items()}
        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


@contextlib.contextmanager
def worker() -> Iterator[None]:
    """The life of one `deepwright train` process, alone or as a rank under torchrun: at the end it leaves the
    process group it joined (if any); under `deepwright train --nproc` a `DeepwrightError` is left for the
    launcher to print (`$DEEPWRIGHT_ERROR_DIR/rank-<RANK>.txt`) and the process ends with status 2 silently, so
    that the run prints the failing rank's message once; so does a rank whose collective broke because another
    rank of this machine failed that way first."""
    try:
        yield
    except DeepwrightError as error:
        folder = os.environ.get(ERROR_DIR_ENV)
        if not folder or "RANK" not in os.environ:
            raise
        Path(folder, f"rank-{os.environ['RANK']}.txt").write_text(str(error), encoding="utf-8")
        raise SystemExit(EXIT_USER_ERROR) from None
    except Exception:  # a collective that lost a rank which failed first: the launcher prints that rank's message
        folder = os.environ.get(ERROR_DIR_ENV)
        if folder and any(Path(folder).glob("rank-*.txt")):
            raise SystemExit(EXIT_USER_ERROR) from None
        raise
    finally:
        distributed = sys.modules.get("torch.distributed")  # never imported: no group to leave
        if distributed is not None and distributed.is_available() and distributed.is_initialized():
            distributed.destroy_process_group()


def _timeout_seconds() -> float:
    """The process group's timeout: `$DEEPWRIGHT_DISTRIBUTED_TIMEOUT` seconds, else 120."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ConfigError(f"${TIMEOUT_ENV} is {text!r}; give a number of seconds above 0")
    return seconds


def _is_sharded(model: nn.Module) -> bool:
    """Whether FSDP2 sharded `model`'s parameters."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)
