"""benchmarks/gpu_check.sh: its CPU dry run trains nanoGPT's shakespeare-char GPU model for a few steps and prints
its figures as one JSON line (the GPU measurement itself needs a CUDA machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # about 30 s on an idle two-core machine: the 10.7M-parameter model, its plots and bundle
def test_the_dry_run_trains_a_few_cpu_steps_and_prints_the_figures(tmp_path: Path) -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--steps", "2", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "GPU_CHECK_PYTHON": sys.executable},
    )
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["dry_run"] is True and figures["steps"] == 2
    model = figures["config"]["model"]
    sizes = (model["layers"], model["heads"], model["dim"], model["block_size"], model["dropout"])
    assert sizes == (6, 6, 384, 256, 0.2)
    assert figures["tokens_per_second"] > 0 and figures["val_loss"] > 0
    assert figures["flops_per_token"] > 6 * 10_000_000  # about 10.7 million non-embedding parameters
