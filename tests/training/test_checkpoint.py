"""Checkpoints: written atomically, read back exactly, and never unpickled into code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepwright.errors import DataError
from deepwright.training.checkpoint import load_checkpoint, save_checkpoint


class Planted:
    """An object that, if unpickled, runs code: it creates the file it names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_round_trip(tmp_path: Path) -> None:
    payload = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "history": [{"loss": 0.5}], "best": None}
    path = tmp_path / "c" / "last.pt"
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], payload["model"]["w"])
    assert loaded["epoch"] == 3
    assert loaded["history"] == [{"loss": 0.5}]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no checkpoint here") as caught:
        load_checkpoint(tmp_path / "last.pt")
    assert caught.value.source == str(tmp_path / "last.pt")


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"w": torch.zeros(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="cannot read the checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "last.pt"
    torch.save({"epoch": 1, "extra": Planted(marker)}, path)
    with pytest.raises(DataError, match="cannot read the checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
