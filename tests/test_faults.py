"""Faults while writing: a process killed half-way through a bundle or a prediction file, a file-size limit, a
folder that cannot be written, two runs into one folder. The previous file stays whole, nothing half-written is
left under the target's name, and the command says why in one line with exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepwright.runs import new_run_dir
from tests.helpers import Outcome, Trained, assert_user_error, make_frame, write_frame

# Each fault runs in a child forked from one interpreter (torch is imported once, not once per case), with one
# thread so that the fork is safe; the child's standard error goes to <case>.err and its exit status is kept.
FAULTS = """
import json, os, resource, signal, sys
import torch
torch.set_num_threads(1)
import safetensors.torch
from deepwright.api import load
from deepwright.cli import main
from deepwright.deploy import batch

folder, bundle, data, config = sys.argv[1:5]
model = load(bundle)
os.chdir(folder)

def half_then_die(module, filename, **options):
    with open(filename, "wb") as handle:
        handle.write(b"half a weights file")
    os.kill(os.getpid(), signal.SIGKILL)

def die_after_two(*args, **options):
    for number, chunk in enumerate(CHUNKS(*args, **options)):
        if number == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        yield chunk

def limited(size, argv):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    return main(argv)

CHUNKS = batch.read_chunks
CASES = {
    "bundle-kill": lambda: (setattr(safetensors.torch, "save_model", half_then_die), model.save(bundle)),
    "predict-kill": lambda: (
        setattr(batch, "read_chunks", die_after_two),
        model.predict_file(data, "killed/predictions.csv", chunk_rows=50, progress=False),
    ),
    "predict-limit": lambda: limited(
        10_000, ["predict", "--model", bundle, "--data", data, "--output", "limited/predictions.csv", "--quiet"]
    ),
    "train-limit": lambda: limited(
        3_000, ["train", "--config", config, "--data", data, "--output", "limited-runs", "--quiet"]
    ),
}
statuses = {}
for name, case in CASES.items():
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(f"{name}.err", os.O_WRONLY | os.O_CREAT, 0o644), 2)
        code = case()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0)
    statuses[name] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(statuses))
"""


@dataclass
class Faults:
    """What the fault cases left: the folder, the bundle they wrote over, and each case's status and stderr."""

    folder: Path
    bundle: Path
    before: dict[str, bytes]
    status: dict[str, int]

    def stderr(self, case: str) -> str:
        return (self.folder / f"{case}.err").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def faults(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Faults:
    folder = tmp_path_factory.mktemp("faults")
    bundle = Path(shutil.copytree(trained.result.bundle_dir, folder / "model"))
    before = {path.name: path.read_bytes() for path in bundle.iterdir() if path.is_file()}
    data = write_frame(make_frame(600, seed=2), folder / "rows.csv")
    for case in ("killed", "limited"):
        (folder / case).mkdir()
        (folder / case / "predictions.csv").write_text("the previous predictions\n", encoding="utf-8")
    config = trained.result.run_dir / "config.yaml"
    completed = subprocess.run(
        [sys.executable, "-c", FAULTS, str(folder), str(bundle), str(data), str(config)],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return Faults(folder, bundle, before, json.loads(completed.stdout.strip().splitlines()[-1]))


def test_a_kill_while_a_bundle_is_written_leaves_the_previous_bundle_whole(faults: Faults) -> None:
    from deepwright.api import load

    assert faults.status["bundle-kill"] == -signal.SIGKILL, faults.stderr("bundle-kill")
    assert {path.name: path.read_bytes() for path in faults.bundle.iterdir() if path.is_file()} == faults.before
    assert len(load(faults.bundle).predict(make_frame(3).drop(columns=["label"]))) == 3  # still verifies and loads


def test_a_kill_while_predictions_are_written_leaves_the_previous_file_whole(faults: Faults) -> None:
    assert faults.status["predict-kill"] == -signal.SIGKILL, faults.stderr("predict-kill")
    folder = faults.folder / "killed"
    assert (folder / "predictions.csv").read_text(encoding="utf-8") == "the previous predictions\n"
    partial = [path.name for path in folder.iterdir() if path.name != "predictions.csv"]
    assert len(partial) == 1 and partial[0].startswith(".predictions.csv.")  # hidden, beside, never the target


def test_a_file_size_limit_ends_predict_with_one_line_and_no_partial_file(faults: Faults) -> None:
    """RLIMIT_FSIZE with SIGXFSZ ignored: write() fails with EFBIG, as on a full small disk."""
    message = assert_user_error(Outcome(faults.status["predict-limit"], "", faults.stderr("predict-limit")))
    assert "limited/predictions.csv" in message and "file-size limit" in message
    folder = faults.folder / "limited"
    assert [path.name for path in folder.iterdir()] == ["predictions.csv"]
    assert (folder / "predictions.csv").read_text(encoding="utf-8") == "the previous predictions\n"


def test_a_file_size_limit_during_training_ends_in_one_line(faults: Faults) -> None:
    """The checkpoint (torch.save hides the error number) or the bundle (safetensors quotes it) is too large."""
    message = assert_user_error(Outcome(faults.status["train-limit"], "", faults.stderr("train-limit")))
    assert "cannot be written" in message and "file-size limit" in message
    assert not [path for path in (faults.folder / "limited-runs").rglob("*") if path.name.endswith(".partial")]


@pytest.mark.parametrize("command", ["predict", "init", "evaluate", "train"])
def test_an_output_of_the_wrong_kind_is_refused_before_any_work(
    command: str, cli: Callable[..., Outcome], trained: Trained, tmp_path: Path
) -> None:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("keep\n", encoding="utf-8")
    model, data = str(trained.result.bundle_dir), str(trained.data)
    args = {
        "predict": ["--model", model, "--data", data, "--output", "a-folder"],
        "init": ["--data", data, "--target", "label", "--output", "a-folder"],
        "evaluate": ["--model", model, "--data", data, "--output", "a-file"],
        "train": ["--config", str(trained.result.run_dir / "config.yaml"), "--data", data, "--output", "a-file"],
    }[command]
    message = assert_user_error(cli(command, *args, cwd=tmp_path))
    assert "--output needs a" in message
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "keep\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "a-folder"]
    assert list((tmp_path / "a-folder").iterdir()) == []


def test_train_into_a_path_under_a_file_is_refused_before_training(
    cli: Callable[..., Outcome], trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deepwright.api

    def no_training(*args: object, **options: object) -> None:
        raise AssertionError("trained before finding the output unwritable")

    monkeypatch.setattr(deepwright.api.Pipeline, "fit", no_training)
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    config = str(trained.result.run_dir / "config.yaml")
    completed = cli("train", "--config", config, "--data", str(trained.data), "--output", "a-file/runs", cwd=tmp_path)
    assert "a file stands where a folder is needed" in assert_user_error(completed)


def test_a_full_disk_met_by_any_writer_is_one_line_and_exit_2(
    cli: Callable[..., Outcome], trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer outside atomic_path (here the run's log) meets ENOSPC: main still says it in one line."""
    import deepwright.kinds.base

    def full(*args: object, **options: object) -> None:
        raise OSError(28, "No space left on device", "runs/people/config.yaml")

    monkeypatch.setattr(deepwright.kinds.base, "write_run_start", full)
    config, data = str(trained.result.run_dir / "config.yaml"), str(trained.data)
    completed = cli("train", "--config", config, "--data", data, "--output", "runs", "--quiet", cwd=tmp_path)
    assert "runs/people/config.yaml: cannot be written: the disk is full" in assert_user_error(completed)


def test_two_runs_into_one_output_folder_stay_separate(tmp_path: Path) -> None:
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir(tmp_path / "runs", "same"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 16
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == sorted(path.name for path in made)


def test_two_writers_of_one_file_never_mix_their_bytes(tmp_path: Path) -> None:
    from deepwright.data.io import atomic_path

    target = tmp_path / "predictions.csv"

    def write(text: str) -> None:
        with atomic_path(target) as temporary, open(temporary, "w", encoding="utf-8") as handle:
            for _ in range(2000):
                handle.write(text)

    threads = [threading.Thread(target=write, args=(f"{letter}\n",)) for letter in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2000 and len(set(lines)) == 1  # one writer's whole file, not a mixture
    assert [path.name for path in tmp_path.iterdir()] == ["predictions.csv"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line(cli: Callable[..., Outcome], trained: Trained, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        args = ["--model", str(trained.result.bundle_dir), "--data", str(trained.data), "--output", "locked/p.csv"]
        assert "permission denied" in assert_user_error(cli("predict", *args, cwd=tmp_path))
    finally:
        locked.chmod(0o755)
