"""Every generator a run draws from goes into a checkpoint as plain data and comes back exactly."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from deepwright.training.checkpoint import load_checkpoint, save_checkpoint
from deepwright.training.rng import gather_ranks, own_entry, restore_rng_states, rng_states, world


def draws() -> tuple:
    dropout = torch.nn.functional.dropout(torch.ones(16), 0.5, training=True)
    return dropout.tolist(), torch.rand(3).tolist(), np.random.randn(3).tolist(), random.random(), random.gauss(0, 1)


def test_the_states_survive_a_weights_only_checkpoint_and_give_the_same_draws(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # numpy holds a cached second gaussian now
    random.gauss(0, 1)  # and so does Python
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_states()})
    expected = draws()
    restore_rng_states(load_checkpoint(tmp_path / "rng.pt")["rng"])  # read with weights_only=True
    assert draws() == expected


def test_one_process_is_rank_0_of_1_and_its_state_is_plain_data() -> None:
    assert world() == (0, 1)
    assert gather_ranks("mine") == ["mine"]
    state = rng_states()
    assert isinstance(state["torch"], torch.Tensor)
    assert isinstance(state["numpy"]["keys"], torch.Tensor) and state["numpy"]["keys"].shape == (624,)
    assert isinstance(state["python"]["state"], list) and len(state["python"]["state"]) == 625
    assert state["cuda"] == [] or torch.cuda.is_initialized()


def test_each_rank_gets_its_own_state_back_and_new_ranks_wrap_around(monkeypatch: pytest.MonkeyPatch) -> None:
    states, expected = [], []
    for seed in (10, 11):  # rank 0's and rank 1's
        torch.manual_seed(seed)
        states.append(rng_states())
        expected.append(torch.rand(2))
    for rank, world_size, saved in ((1, 2, 1), (0, 2, 0), (2, 3, 0)):  # (2 of 3) wraps around to rank 0's
        monkeypatch.setattr("deepwright.training.rng.world", lambda rank=rank, size=world_size: (rank, size))
        restore_rng_states(own_entry(states))
        assert torch.equal(torch.rand(2), expected[saved]), (rank, world_size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_cuda_generators_come_back_too() -> None:
    torch.cuda.manual_seed_all(7)
    torch.rand(1, device="cuda")  # CUDA is initialised: its generators are saved
    state = rng_states()
    assert len(state["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(4, device="cuda")
    restore_rng_states(state)
    assert torch.equal(torch.rand(4, device="cuda"), expected)
