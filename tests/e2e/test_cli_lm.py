"""A character language model from the command line alone, in subprocesses as a user runs it: init → train →
evaluate → generate (streamed to standard output)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.helpers import run_cli

SHAKESPEARE = Path(__file__).parents[1] / "fixtures" / "text" / "shakespeare.txt"


def test_a_char_language_model_from_the_cli(workspace: Path) -> None:
    shutil.copy(SHAKESPEARE, workspace / "plays.txt")
    init = run_cli("init", "--task", "lm", "--data", "plays.txt", "-o", "lm.yaml", cwd=workspace)
    assert init.returncode == 0, init.stderr
    config = yaml.safe_load((workspace / "lm.yaml").read_text())
    config["model"].update({"layers": 1, "dim": 32, "block_size": 32})
    config["trainer"].update({"max_steps": 6, "eval_every": 3})
    (workspace / "lm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    train = run_cli("train", "--config", "lm.yaml", "--data", "plays.txt", cwd=workspace)
    assert train.returncode == 0, train.stderr
    assert "step 6/6" in train.stderr and "val loss" in train.stderr  # progress lines
    bundle = workspace / "runs" / "plays" / "model"
    assert json.loads((bundle / "config.json").read_text())["model_type"] == "lm"

    evaluate = run_cli("evaluate", "--model", bundle, "--data", "plays.txt", cwd=workspace)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "perplexity" in evaluate.stdout

    generate = run_cli(
        "generate", "--model", bundle, "--prompt", "KING:", "--max-new-tokens", 20, "--seed", 0, cwd=workspace
    )
    assert generate.returncode == 0, generate.stderr
    assert generate.stdout.startswith("KING:") and len(generate.stdout) >= len("KING:") + 20
    assert "20 tokens" in generate.stderr

    schema = run_cli("init", "--task", "lm", "--schema", cwd=workspace)
    assert "block_size" in json.loads(schema.stdout)["$defs"]["GPTConfig"]["properties"]
