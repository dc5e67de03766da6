"""Language models from the command line, in-process: init --task lm → train → generate → evaluate, and every bad
input as exit status 2 with a short message and nothing written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.helpers import Outcome, assert_user_error, files_under

CLI = Callable[..., Outcome]
SHAKESPEARE = Path(__file__).parents[1] / "fixtures" / "text" / "shakespeare.txt"
TINY = {"layers": 1, "heads": 2, "dim": 16, "block_size": 16}

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with the Shakespeare fixture and a tiny language-model config (8 steps)."""
    shutil.copy(SHAKESPEARE, tmp_path / "plays.txt")
    config = {"model_type": "lm", "model": TINY, "trainer": {"max_steps": 8, "eval_every": 4, "eval_batches": 2}}
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


def train_fails(cli: CLI, project: Path, *, data: str = "plays.txt", max_lines: int = 2) -> str:
    before = files_under(project)
    completed = cli("train", "--config", "lm.yaml", "--data", data, "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(completed, max_lines=max_lines)
    assert files_under(project) == before
    return message


def test_init_train_generate_evaluate(cli: CLI, project: Path) -> None:
    init = cli("init", "--task", "lm", "--data", "plays.txt", "-o", "inferred.yaml", cwd=project)
    assert init.returncode == 0, init.stderr
    inferred = yaml.safe_load((project / "inferred.yaml").read_text())
    assert inferred["model_type"] == "lm" and inferred["tokenizer"] == {"type": "char"}
    assert inferred["model"]["block_size"] == 64

    trained = cli("train", "--config", "lm.yaml", "--data", "plays.txt", "--output", "runs", "--quiet", cwd=project)
    assert trained.returncode == 0, trained.stderr
    assert "trained 8 steps" in trained.stdout
    assert "perplexity" in trained.stdout
    bundle = project / "runs" / "plays" / "model"

    command = ("generate", "--model", bundle, "--prompt", "ROMEO:", "--max-new-tokens", 30, "--seed", 1)
    generated = cli(*command, cwd=project)
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith("ROMEO:")
    assert len(generated.stdout.rstrip("\n")) >= 6 + 29
    assert "30 tokens" in generated.stderr
    again = cli(*command, cwd=project)
    assert again.stdout == generated.stdout

    stopped = cli(
        "generate", "--model", bundle, "--prompt", "A", "--seed", 1, "--stop", "\\n", "--stop", "e", cwd=project
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "ended by a stop string" in stopped.stderr and "e" not in stopped.stdout[1:].rstrip("\n")
    assert "\n" not in stopped.stdout.rstrip("\n")  # '\\n' on the command line is a newline

    long_prompt = cli("generate", "--model", bundle, "--prompt", "x" * 40, "--max-new-tokens", 3, cwd=project)
    assert "note: the prompt has 40 tokens, more than the block size 16" in long_prompt.stderr

    evaluated = cli("evaluate", "--model", bundle, "--data", "plays.txt", "--output", "evaluation", cwd=project)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "perplexity" in evaluated.stdout
    assert (project / "evaluation" / "metrics.json").is_file()

    resumed = cli("train", "--resume", project / "runs" / "plays", "--quiet", cwd=project)
    assert resumed.returncode == 0, resumed.stderr  # already at max_steps: it saves the bundle again

    predicted = cli("predict", "--model", bundle, "--data", "plays.txt", cwd=project)
    assert "language model" in assert_user_error(predicted)
    bad = cli("generate", "--model", bundle, "--temperature", "-1", cwd=project)
    assert "temperature" in assert_user_error(bad)


def test_bytes_that_are_not_utf8(cli: CLI, project: Path) -> None:
    (project / "latin1.txt").write_bytes(b"To be, or not to be: " * 20 + "café".encode("latin-1"))
    message = train_fails(cli, project, data="latin1.txt")
    assert "latin1.txt: byte 423 (0xe9) is not valid UTF-8" in message
    assert "encoding_errors: replace" in message


def test_bytes_that_are_not_utf8_replaced_when_the_config_says_so(cli: CLI, project: Path) -> None:
    text = SHAKESPEARE.read_bytes()[:3000] + b"\xff\xfe" + SHAKESPEARE.read_bytes()[3000:]
    (project / "mixed.txt").write_bytes(text)
    config = yaml.safe_load((project / "lm.yaml").read_text())
    config["corpus"] = {"encoding_errors": "replace"}
    (project / "lm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    completed = cli("train", "--config", "lm.yaml", "--data", "mixed.txt", "--output", "runs", "--quiet", cwd=project)
    assert completed.returncode == 0, completed.stderr
    assert "2 bytes that were not UTF-8 replaced" in completed.stdout


def test_an_empty_corpus(cli: CLI, project: Path) -> None:
    (project / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert "empty.txt: the corpus is empty" in train_fails(cli, project, data="empty.txt")
    (project / "texts").mkdir()
    (project / "texts" / "blank.txt").write_text("", encoding="utf-8")
    assert "the corpus is empty" in train_fails(cli, project, data="texts")


def test_a_block_size_larger_than_the_corpus(cli: CLI, project: Path) -> None:
    (project / "short.txt").write_text("Now is the winter of our discontent", encoding="utf-8")
    config = yaml.safe_load((project / "lm.yaml").read_text())
    config["model"]["block_size"] = 64
    (project / "lm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    message = train_fails(cli, project, data="short.txt")
    assert "short.txt: the training text has 31 tokens, but model.block_size 64 needs at least 65" in message


def test_an_unknown_tokenizer_type(cli: CLI, project: Path) -> None:
    config = yaml.safe_load((project / "lm.yaml").read_text())
    config["tokenizer"] = {"type": "bytes"}
    (project / "lm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    message = train_fails(cli, project, max_lines=3)
    assert "tokenizer.type: unknown type 'bytes'" in message
    assert "choices: word, char, bpe" in message


def test_an_unknown_model_type(cli: CLI, project: Path) -> None:
    (project / "lm.yaml").write_text("model_type: llm\n", encoding="utf-8")
    assert "model_type: 'llm' is not a choice; did you mean 'lm'?" in train_fails(cli, project, max_lines=3)


def test_generate_needs_a_language_model(cli: CLI, project: Path) -> None:
    missing = cli("generate", "--model", "nowhere", "--prompt", "hi", cwd=project)
    assert "no bundle here" in assert_user_error(missing)
