"""The thread count a run trains with."""

import torch

from deepwright.training.threads import SMALL_STEP, training_threads


def test_the_configured_count_wins() -> None:
    assert training_threads(torch.nn.Linear(1000, 1000), 256, requested=3) == 3


def test_a_small_step_trains_on_one_thread() -> None:
    model = torch.nn.Linear(30, 128)
    assert sum(p.numel() for p in model.parameters()) * 32 < SMALL_STEP
    assert training_threads(model, 32, requested=None) == 1


def test_a_large_step_keeps_torchs_choice() -> None:
    model = torch.nn.Linear(1000, 1000)
    assert training_threads(model, 256, requested=None) == torch.get_num_threads()
