"""A language model fine-tuned from a GPT-2 checkpoint (`init_from`): training lowers the checkpoint's loss,
the bundle holds the checkpoint's model and tokenizer and generates without the checkpoint folder, `init
--pretrained` writes such a config, and broken checkpoints are exit status 2 from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import deepwright as dp
from deepwright.config import load_config, resolve_init_from
from deepwright.data.corpus import read_corpus, split_text
from deepwright.evaluation.language import corpus_loss
from deepwright.features.tokenization import encode_corpus, gpt2_tokenizer
from deepwright.models.gpt import GPT
from deepwright.models.gpt2_weights import load_gpt2_weights
from tests.gpt2 import SHAKESPEARE, VOCABULARY_SIZE, write_gpt2_tokenizer

pytestmark = pytest.mark.usefixtures("no_plots")

BLOCK = 32


def fine_tune_config(checkpoint: Path, **trainer: Any) -> dict:
    steps = {"max_steps": 40, "eval_every": 20, "eval_batches": 2, "batch_size": 4, **trainer}
    return {
        "model_type": "lm",
        "init_from": str(checkpoint),
        "model": {"block_size": BLOCK},
        "trainer": {**steps, "optimizer": {"type": "adamw", "lr": 2e-3}},
    }


@pytest.fixture(scope="module")
def fine_tuned(gpt2_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dp.Pipeline, Any, Path]:
    folder = tmp_path_factory.mktemp("fine_tuned")
    checkpoint = Path(shutil.copytree(gpt2_checkpoint, folder / "checkpoint"))
    pipeline = dp.Pipeline.from_config(fine_tune_config(checkpoint))
    result = pipeline.fit(SHAKESPEARE, output_dir=folder / "runs", progress=False)
    return pipeline, result, checkpoint


def checkpoint_loss(checkpoint: Path) -> float:
    """The untouched checkpoint's loss on the validation text, measured as the fit measures it."""
    config = resolve_init_from(load_config(fine_tune_config(checkpoint)))
    model = GPT.from_options(config.model, VOCABULARY_SIZE)
    load_gpt2_weights(model, checkpoint)
    _, validation = split_text(read_corpus(SHAKESPEARE, config.corpus).text, 0.1)
    ids = torch.from_numpy(encode_corpus(gpt2_tokenizer(checkpoint), validation, "pretrained"))
    return corpus_loss(model.eval(), ids, BLOCK)["loss"]


def test_fine_tuning_lowers_the_checkpoints_loss_and_generates(fine_tuned: tuple) -> None:
    pipeline, result, checkpoint = fine_tuned
    before = checkpoint_loss(checkpoint)
    after = result.metrics["validation"]["loss"]
    assert after < before - 0.5, (before, after)
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [20, 40]
    assert any("vocabulary 300" in line for line in result.summary)
    text = pipeline.generate("ROMEO:", max_new_tokens=20, seed=1)
    assert isinstance(text, str) and text


def test_the_bundle_serves_without_the_checkpoint(fine_tuned: tuple, tmp_path: Path) -> None:
    pipeline, result, checkpoint = fine_tuned
    saved = json.loads((result.bundle_dir / "config.json").read_text())
    assert saved["init_from"] == str(checkpoint) and saved["tokenizer"] == {"type": "pretrained"}
    model = saved["model"]
    assert (model["layers"], model["heads"], model["dim"], model["block_size"]) == (2, 2, 32, BLOCK)
    assert (model["bias"], model["activation"], model["norm_eps"]) == (True, "gelu_tanh", 1e-5)
    assert pipeline.config.model == load_config(saved).model  # the pipeline keeps the completed config
    copy = Path(shutil.copytree(checkpoint, tmp_path / "kept"))
    shutil.rmtree(checkpoint)
    try:
        loaded = dp.load(result.bundle_dir)
        assert loaded.generate("ROMEO:", max_new_tokens=20, seed=1) == pipeline.generate(
            "ROMEO:", max_new_tokens=20, seed=1
        )
        resaved = dp.load(pipeline.save(tmp_path / "again"))
        assert resaved.predictor.tokenizer.to_str() == gpt2_tokenizer(copy).to_str()
        stream = loaded.generate('"!', max_new_tokens=5, seed=1, stream=True)
        assert "".join(stream) and stream.notes == []  # ids 0 and 1 are the checkpoint's tokens, not specials
    finally:
        shutil.copytree(copy, checkpoint)


def test_init_writes_a_fine_tuning_config(gpt2_checkpoint: Path, tmp_path: Path, cli: Any) -> None:
    outcome = cli(
        "init", "--task", "lm", "--data", SHAKESPEARE, "--pretrained", gpt2_checkpoint, "-o", "lm.yaml", cwd=tmp_path
    )
    assert outcome.returncode == 0, outcome.stderr
    written = yaml.safe_load((tmp_path / "lm.yaml").read_text())
    assert written["init_from"] == str(gpt2_checkpoint) and "tokenizer" not in written
    assert written["model"] == {"block_size": 64, "dropout": 0.0}  # min(n_positions, 256)
    assert "a GPT-2 of 2 layers, 2 heads, width 32 and 300 tokens" in outcome.stderr
    config = resolve_init_from(load_config(tmp_path / "lm.yaml"))
    assert (config.model.layers, config.model.dim, config.tokenizer.type) == (2, 32, "pretrained")


def test_init_refuses_a_hub_name(tmp_path: Path, cli: Any) -> None:
    outcome = cli("init", "--task", "lm", "--data", SHAKESPEARE, "--pretrained", "gpt2", cwd=tmp_path)
    assert outcome.returncode == 2 and "'gpt2' is not a local folder" in outcome.stderr


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("hub name", "init_from 'openai-community/gpt2' is not a local folder"),
        ("no weights", "no model.safetensors or pytorch_model.bin"),
        ("corrupt weights", "model.safetensors: not a readable checkpoint"),
        ("another tokenizer", "tokenizer.json has 259 tokens but vocab_size"),
        ("conflicting size", "model.dim: 64 conflicts with n_embd 32"),
    ],
)
def test_train_refuses_a_broken_checkpoint(
    gpt2_checkpoint: Path, tmp_path: Path, cli: Any, breakage: str, message: str
) -> None:
    checkpoint = Path(shutil.copytree(gpt2_checkpoint, tmp_path / "checkpoint"))
    config = fine_tune_config(checkpoint)
    if breakage == "hub name":
        config["init_from"] = "openai-community/gpt2"
    elif breakage == "no weights":
        (checkpoint / "model.safetensors").unlink()
    elif breakage == "corrupt weights":
        (checkpoint / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes()[:500])
    elif breakage == "another tokenizer":
        write_gpt2_tokenizer(checkpoint, 259)
    else:
        config["model"]["dim"] = 64
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(config))
    outcome = cli("train", "--config", "lm.yaml", "--data", SHAKESPEARE, "--quiet", cwd=tmp_path)
    assert outcome.returncode == 2, outcome.stderr
    assert message in outcome.stderr and "Traceback" not in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) <= 2
    assert not list(tmp_path.glob("runs/*"))  # no run directory


def test_resuming_a_fine_tune_ends_where_an_uninterrupted_one_does(
    gpt2_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fine-tune cut after its first checkpoint and resumed from its run directory (the completed config, the
    tokenizer in preprocessing.json) ends with the weights of an uninterrupted one."""
    from deepwright.training.checkpoint import CheckpointFolder

    config = fine_tune_config(gpt2_checkpoint, max_steps=8, eval_every=4)
    full = dp.Pipeline.from_config(config)
    full.fit(SHAKESPEARE, output_dir=tmp_path, run_name="full", progress=False)
    original = CheckpointFolder.save

    def save_then_interrupt(folder: CheckpointFolder, payload: dict) -> None:
        original(folder, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointFolder, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        dp.Pipeline.from_config(config).fit(SHAKESPEARE, output_dir=tmp_path, run_name="cut", progress=False)
    monkeypatch.setattr(CheckpointFolder, "save", original)
    resumed = dp.Pipeline.from_config(tmp_path / "cut" / "config.yaml")
    resumed.fit(SHAKESPEARE, resume_from=tmp_path / "cut", progress=False)
    for name, tensor in full.predictor.model.state_dict().items():
        assert torch.equal(resumed.predictor.model.state_dict()[name], tensor), name
