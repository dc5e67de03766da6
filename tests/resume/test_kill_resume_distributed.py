"""`kill -9` of a whole 2-process run (the launcher and both workers) at a random step inside an epoch, then
`deepwright train --resume RUN --nproc 2`: the bundle's weights equal an uninterrupted 2-process run's bit for bit
(each rank's generators and share of the epoch come back to it), and the log but for the timings; resumed in one
process instead, it continues from the same checkpoint with a warning that the data order changes."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli
from tests.resume.test_kill_resume import assert_same_run, table_case, train

pytestmark = [
    pytest.mark.slow,  # six CLI start-ups, two of them launchers: about a minute and a half of CPU
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc"),
]


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and by them, … (torchrun starts its workers in sessions of their own)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_kill_nine_of_a_two_process_run_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    config, data, steps = table_case(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rng = random.Random(seed := random.randrange(1_000_000))
    target = rng.randrange(steps // 5, steps // 2)
    killed = tmp_path / "runs" / "killed"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "deepwright", *train(tmp_path / "config.yaml", data, "killed"), "--nproc", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and launcher.poll() is None:
            names = os.listdir(killed / "checkpoints") if (killed / "checkpoints").is_dir() else []
            if any(name.startswith("step-") and int(name[5:13]) >= target for name in names):
                time.sleep(rng.uniform(0, 0.02))
                break
            time.sleep(0.001)
        workers = descendants(launcher.pid)
        for pid in [*workers, launcher.pid]:  # all at once, as when the machine goes away
            os.kill(pid, signal.SIGKILL)
    finally:
        _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == -signal.SIGKILL, f"the run ended before the kill (step {target}): {stderr!r}"
    assert workers, "no worker processes found"

    alone = shutil.copytree(killed, tmp_path / "runs" / "alone")  # the same stopped run, resumed in one process
    resumed = run_cli("train", "--resume", alone, "--quiet", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "warning: the checkpoint at step" in resumed.stderr and "data order" in resumed.stderr

    resumed = run_cli("train", "--resume", killed, "--nproc", "2", "--quiet", cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, f"(seed {seed}, target step {target}) {resumed.stderr}"
    whole = run_cli(*train(tmp_path / "config.yaml", data, "whole"), "--nproc", "2", cwd=tmp_path, timeout=240)
    assert whole.returncode == 0, whole.stderr
    assert_same_run(tmp_path / "runs" / "whole", killed)
