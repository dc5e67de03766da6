"""`deepwright train --nproc N`: N training processes on this machine, started by PyTorch's own launcher.

The launcher is torchrun (`torch.distributed.run`), called through its API in this process: it starts the workers
(`python -m deepwright train` with the same options, less the launcher's), gives each its rank in the environment,
and with `--nnodes`, `--node-rank` and a rendezvous (`--rdzv-backend c10d --rdzv-endpoint host:port`, or
`--master-addr`/`--master-port`) joins the workers of other machines. When any worker fails, torchrun stops the
others; a worker that failed on a `DeepwrightError` left its message in a folder the launcher made
(`distributed.worker`), and the launcher raises it again as `RankFailed`, naming the rank: one line, exit status 2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deepwright.errors import ConfigError, DeepwrightError
from deepwright.training.distributed import ERROR_DIR_ENV, Distributed

__all__ = ["LAUNCH_OPTIONS", "Launch", "RankFailed", "launch"]

LAUNCH_OPTIONS = ("nproc", "nnodes", "node_rank", "rdzv_backend", "rdzv_endpoint", "master_addr", "master_port")
"""The `train` options that are the launcher's own (the workers get every other option)."""


class RankFailed(DeepwrightError):
    """A worker of a distributed run stopped on a mistake in the input; the message is that worker's, and names it.

    >>> str(RankFailed(1, "data.csv, row 7, column 'age': value 'x' is not a number"))
    "rank 1: data.csv, row 7, column 'age': value 'x' is not a number"
    """

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(f"rank {rank}: {message}")
        self.rank = rank


@dataclass
class Launch:
    """How to start the workers: torchrun's options, by the names `deepwright train` gives them."""

    nproc: int
    nnodes: str | None = None
    node_rank: int | None = None
    rdzv_backend: str | None = None
    rdzv_endpoint: str | None = None
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def world_size(self) -> int | None:
        """The number of processes of the run, when it is fixed (not an elastic range of machines such as 1:4).

        >>> Launch(4, nnodes="2").world_size, Launch(4, nnodes="1:2").world_size
        (8, None)
        """
        nodes = self.nnodes or "1"
        return self.nproc * int(nodes) if nodes.isdigit() else None

    def torchrun_arguments(self) -> list[str]:
        """The command line torchrun gets before the worker's module.

        >>> Launch(2, nnodes="2", node_rank=1, rdzv_endpoint="10.0.0.1:29400").torchrun_arguments()[2:]
        ['--nnodes=2', '--node-rank=1', '--rdzv-endpoint=10.0.0.1:29400']
        """
        arguments = [f"--nproc-per-node={self.nproc}", "--max-restarts=0"]
        for name in LAUNCH_OPTIONS[1:]:
            value = getattr(self, name)
            if value is not None:
                arguments.append(f"--{name.replace('_', '-')}={value}")
        return arguments


def launch(options: Launch, worker_arguments: list[str], *, config: Path | None = None) -> None:
    """Run `deepwright train <worker_arguments>` in `options.nproc` processes through torchrun and wait for them.

    The run's `config` file (when given) is checked first, and its global batch against the number of processes,
    before any worker starts. A worker's `DeepwrightError` comes back as `RankFailed` (the lowest failing rank's
    message); a worker that crashed otherwise ends this process with status 1 (its traceback is above); a
    rendezvous that never completes (another machine that does not join) is a `ConfigError` naming the endpoint;
    Ctrl+C stops every worker and is a `KeyboardInterrupt`.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError

    if config is not None and Path(config).is_file() and options.world_size is not None:
        from deepwright.config import load_config

        batch_size = load_config(config).trainer.batch_size
        Distributed(world_size=options.world_size).per_rank_batch(batch_size, "trainer.batch_size")

    command = [*options.torchrun_arguments(), "-m", "deepwright", "train", *worker_arguments]
    with tempfile.TemporaryDirectory(prefix="deepwright-ranks-") as errors, _environment(ERROR_DIR_ENV, errors):
        try:
            with _quiet_launcher():
                torchrun.run(torchrun.parse_args(command))
        except ChildFailedError as failure:
            _raise_rank_failure(Path(errors), failure)
        except SignalException:
            raise KeyboardInterrupt from None
        except RendezvousError as error:
            where = options.rdzv_endpoint or f"{options.master_addr or 'localhost'}:{options.master_port or 29500}"
            raise ConfigError(
                f"the processes of the run did not all meet at {where} ({error}); check that every machine was "
                "started with the same --nnodes and --rdzv-endpoint, and that the address is reachable"
            ) from None


def _raise_rank_failure(errors: Path, failure: object) -> None:
    """Raise the failing rank's own message (`RankFailed`), or end the process with status 1 after a crash."""
    messages = {int(path.stem.split("-")[1]): path.read_text(encoding="utf-8") for path in errors.glob("rank-*.txt")}
    if messages:
        rank = min(messages)
        raise RankFailed(rank, messages[rank])
    rank, first = failure.get_first_failure()  # type: ignore[attr-defined]
    print(f"error: rank {rank} stopped with exit status {first.exitcode} (its output is above)", file=sys.stderr)
    raise SystemExit(1)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`os.environ[name]` set to `value` for the workers started inside the block."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """torchrun's own log lines (a worker's exit, the signal sent to the others) silenced: the launcher reports a
    failure itself, in one line."""
    loggers = [logging.getLogger(name) for name in ("torch.distributed.elastic", "torch.distributed.run")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
