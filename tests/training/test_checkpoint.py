"""Checkpoints: written atomically, read back exactly, and never unpickled into code; a run's folder keeps the
last K and falls back from a corrupt newest one."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pytest
import torch

from deepwright.errors import DataError, DeepwrightWarning
from deepwright.training.checkpoint import CheckpointFolder, load_checkpoint, save_checkpoint, write_atomically


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


def payload(step: int) -> dict:
    return {"step": step, "model": {"w": torch.full((3,), float(step))}}


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, payload(1))

    def fail_half_way(file: IO[bytes]) -> None:
        file.write(b"half a checkpoint")
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        write_atomically(path, fail_half_way)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_the_folder_keeps_the_last_k_and_last_pt_is_the_newest(tmp_path: Path) -> None:
    folder = CheckpointFolder(tmp_path / "checkpoints" / "last.pt", keep=2)
    for step in (3, 6, 9, 12):
        folder.save(payload(step))
    names = sorted(p.name for p in folder.folder.iterdir())
    assert names == ["last.pt", "step-00000009.pt", "step-00000012.pt"]
    assert folder.load()["step"] == 12
    assert torch.load(folder.last, weights_only=True)["step"] == 12  # a whole checkpoint by itself

    single = CheckpointFolder(tmp_path / "single" / "last.pt", keep=1)
    for step in (1, 2):
        single.save(payload(step))
    assert sorted(p.name for p in single.folder.iterdir()) == ["last.pt", "step-00000002.pt"]


def test_a_save_removes_what_a_write_cut_short_by_a_kill_left(tmp_path: Path) -> None:
    folder = CheckpointFolder(tmp_path / "last.pt", keep=1)
    (tmp_path / ".step-00000003.pt.x1y2.partial").write_bytes(b"half")
    (tmp_path / ".last.pt.link.partial").write_bytes(b"")
    folder.save(payload(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step-00000004.pt"]


def test_a_run_resumed_from_an_older_checkpoint_drops_the_later_ones(tmp_path: Path) -> None:
    folder = CheckpointFolder(tmp_path / "last.pt", keep=3)
    for step in (2, 4, 6):
        folder.save(payload(step))
    folder.save(payload(3))  # the run went on from step 2 (step 4's and 6's files were unreadable)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step-00000002.pt", "step-00000003.pt"]


@pytest.mark.parametrize("damage", ["torn", "garbage", "empty"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before_with_a_warning(tmp_path: Path, damage: str) -> None:
    folder = CheckpointFolder(tmp_path / "last.pt", keep=2)
    folder.save(payload(5))
    folder.save(payload(10))
    whole = folder.last.read_bytes()
    broken = {"torn": whole[: len(whole) // 2], "garbage": b"\x00not a checkpoint" * 10, "empty": b""}[damage]
    folder.last.write_bytes(broken)  # a hard link: the newest step file is damaged with it
    with pytest.warns(DeepwrightWarning, match=r"last\.pt cannot be read: it is torn.*resuming from step-00000005\.pt"):
        assert folder.load()["step"] == 5


def test_a_corrupt_last_pt_whose_step_file_is_a_separate_copy_reads_the_copy(tmp_path: Path) -> None:
    folder = CheckpointFolder(tmp_path / "last.pt", keep=2)
    folder.save(payload(5))
    folder.save(payload(10))
    folder.last.unlink()
    folder.last.write_bytes(b"garbage")  # no longer the same file as step-00000010.pt
    with pytest.warns(DeepwrightWarning, match="resuming from step-00000010.pt"):
        assert folder.load()["step"] == 10


def test_nothing_readable_is_the_newest_ones_error_and_no_last_pt_is_no_checkpoint(tmp_path: Path) -> None:
    folder = CheckpointFolder(tmp_path / "last.pt", keep=1)
    with pytest.raises(DataError, match="no checkpoint here"):
        folder.load()
    folder.save(payload(1))
    folder.last.write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read the checkpoint") as caught:
        folder.load()
    assert caught.value.source == str(folder.last)
