"""Every random number generator a run draws from, as plain data a checkpoint can hold and give back.

A checkpoint is read with `torch.load(weights_only=True)`, so the states are tensors, numbers, lists and dicts:
torch's global CPU generator (dropout, augmentation), each CUDA device's when CUDA is in use, numpy's global
generator and Python's `random`. In a distributed run every rank has its own: `gather_ranks` collects a value of
every rank (a collective), and `own_entry` picks this rank's back out.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed

__all__ = ["gather_ranks", "own_entry", "restore_rng_states", "rng_states", "world"]


def world() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) outside a distributed run."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def rng_states() -> dict[str, Any]:
    """This process's generator states, as plain data.

    >>> state = rng_states()
    >>> first = (torch.rand(2), np.random.rand(), random.random())
    >>> restore_rng_states(state)
    >>> second = (torch.rand(2), np.random.rand(), random.random())
    >>> torch.equal(first[0], second[0]) and first[1:] == second[1:]
    True
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else [],
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }


def gather_ranks(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (a collective in a distributed run: every rank must call it)."""
    size = world()[1]
    if size == 1:
        return [value]
    values: list[Any] = [None] * size
    torch.distributed.all_gather_object(values, value)
    return values


def own_entry(entries: list[Any]) -> Any:
    """This rank's entry of what `gather_ranks` gathered; a run resumed with more ranks than it had gives the new
    ones the entry of the rank they wrap around to."""
    return entries[world()[0] % len(entries)]


def restore_rng_states(state: dict[str, Any]) -> None:
    """Set this process's generators to `state` (as `rng_states` made it)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)
    if "numpy" in state:  # (a checkpoint from before these were saved holds torch's alone)
        saved = state["numpy"]
        keys = saved["keys"].numpy().astype(np.uint32)
        np.random.set_state((saved["name"], keys, saved["position"], saved["has_gauss"], saved["cached_gaussian"]))
    if "python" in state:
        python = state["python"]
        random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
