"""Language models through the Python API: train on a corpus, write the run and bundle, load, generate, evaluate,
resume; and the bad inputs (block size beyond the corpus, prompts beyond the block size, rows to predict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import deepwright as dp
from deepwright.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("no_plots")

SHAKESPEARE = Path(__file__).parents[1] / "fixtures" / "text" / "shakespeare.txt"


def lm_config(**sections: Any) -> dict:
    """A tiny character model: 2 layers of width 16, block 16, 30 steps with 3 estimates."""
    trainer = {"max_steps": 30, "eval_every": 10, "eval_batches": 2, "batch_size": 4, **sections.pop("trainer", {})}
    return {
        "model_type": "lm",
        "model": {"layers": 2, "heads": 2, "dim": 16, "block_size": 16, **sections.pop("model", {})},
        "trainer": trainer,
        **sections,
    }


def fit(config: dict, data: Any, output: Path, **options: Any) -> tuple[dp.Pipeline, Any]:
    pipeline = dp.Pipeline.from_config(config)
    return pipeline, pipeline.fit(data, output_dir=output, progress=False, **options)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dp.Pipeline, Any]:
    return fit(lm_config(), SHAKESPEARE, tmp_path_factory.mktemp("lm"))


def test_training_writes_the_run_and_the_bundle(trained: tuple[dp.Pipeline, Any]) -> None:
    _, result = trained
    assert result.run_dir.name == "shakespeare"
    for name in ("config.yaml", "run.json", "preprocessing.json", "log.jsonl", "metrics.json", "checkpoints/last.pt"):
        assert (result.run_dir / name).is_file(), name
    bundle_files = {path.name for path in result.bundle_dir.iterdir()}
    assert bundle_files >= {"config.json", "weights.safetensors", "manifest.json"}
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [10, 20, 30]
    assert {"train_loss", "val_loss", "val_perplexity", "lr", "tokens_per_second"} <= set(log[0])
    characters = len(SHAKESPEARE.read_text())
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["split"]["train"] == int(characters * 0.9)  # one token per character
    assert run["split"]["validation"] == characters - int(characters * 0.9)
    validation = result.metrics["validation"]["next_token"]
    assert validation["perplexity"] == pytest.approx(torch.tensor(validation["loss"]).exp().item())
    assert validation["tokens"] == result.split_sizes["validation"] - 1
    assert any("steps" in line for line in result.summary)


def test_the_model_learns(trained: tuple[dp.Pipeline, Any]) -> None:
    _, result = trained
    vocabulary = json.loads((result.run_dir / "preprocessing.json").read_text())["vocabulary_size"]
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.metrics["validation"]["loss"] < torch.tensor(float(vocabulary)).log().item()  # beats uniform


def test_a_loaded_bundle_generates_what_the_trained_pipeline_generates(trained: tuple[dp.Pipeline, Any]) -> None:
    pipeline, result = trained
    loaded = dp.load(result.bundle_dir)
    assert loaded.can_generate
    first = pipeline.generate("ROMEO:", max_new_tokens=40, seed=3)
    assert loaded.generate("ROMEO:", max_new_tokens=40, seed=3) == first
    assert len(first) == 40  # characters: one per token
    assert loaded.generate("ROMEO:", max_new_tokens=40, seed=4) != first
    stream = loaded.generate("ROMEO:", max_new_tokens=40, seed=3, stream=True)
    assert stream.notes == [] and stream.prompt_tokens == 6
    pieces = list(stream)
    assert "".join(pieces) == first == stream.text
    assert stream.finish_reason == "length" and stream.new_tokens == 40


def test_generation_options_override_the_config_and_are_checked(trained: tuple[dp.Pipeline, Any]) -> None:
    pipeline, _ = trained
    greedy = pipeline.generate("First", max_new_tokens=20, temperature=0)
    assert pipeline.generate("First", max_new_tokens=20, temperature=0, seed=99) == greedy
    assert len(pipeline.generate("First", max_new_tokens=5, top_k=0, top_p=1.0, seed=1)) == 5
    with pytest.raises(ConfigError, match="temperature: Input should be greater than or equal to 0"):
        pipeline.generate("First", temperature=-1)
    with pytest.raises(ConfigError, match="top_p"):
        pipeline.generate("First", top_p=1.5)


def test_a_prompt_longer_than_the_block_size_keeps_its_most_recent_tokens(trained: tuple[dp.Pipeline, Any]) -> None:
    pipeline, _ = trained
    prompt = SHAKESPEARE.read_text()[:100]
    stream = pipeline.generate(prompt, max_new_tokens=10, seed=1, stream=True)
    assert stream.notes == ["the prompt has 100 tokens, more than the block size 16; the model reads its last 16"]
    assert len("".join(stream)) == 10
    same = pipeline.generate(prompt[-16:], max_new_tokens=10, seed=1)
    assert stream.text == same


def test_an_empty_prompt_starts_a_new_line_and_unknown_characters_are_noted(trained: tuple[dp.Pipeline, Any]) -> None:
    pipeline, _ = trained
    empty = pipeline.generate("", max_new_tokens=5, seed=1, stream=True)
    assert "the prompt is empty" in empty.notes[0] and len("".join(empty)) == 5
    unknown = pipeline.generate("日本", max_new_tokens=3, seed=1, stream=True)
    assert unknown.notes == ["2 prompt characters are not in the model's vocabulary (read as unknown)"]


def test_evaluate_measures_loss_and_perplexity_of_a_text(trained: tuple[dp.Pipeline, Any], tmp_path: Path) -> None:
    pipeline, _ = trained
    metrics = pipeline.evaluate(SHAKESPEARE)
    assert metrics["next_token"]["tokens"] == len(SHAKESPEARE.read_text()) - 1
    assert metrics["loss"] == metrics["next_token"]["loss"] > 0
    (tmp_path / "one.txt").write_text("a", encoding="utf-8")
    with pytest.raises(DataError, match="fewer than two tokens"):
        pipeline.evaluate(tmp_path / "one.txt")


def test_rows_cannot_be_predicted_and_table_models_cannot_generate(trained: tuple[dp.Pipeline, Any]) -> None:
    pipeline, _ = trained
    with pytest.raises(ConfigError, match="language model: it writes text"):
        pipeline.predict({"text": "hello"})
    table_model = dp.Pipeline.from_config(
        {"input_features": [{"name": "x", "type": "number"}], "output_features": [{"name": "y", "type": "binary"}]}
    )
    with pytest.raises(ConfigError, match="only a language model"):
        table_model.generate("hello")
    assert not table_model.can_generate


def test_a_block_size_larger_than_the_corpus_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "short.txt").write_text("To be or not to be", encoding="utf-8")
    output = tmp_path / "runs"
    with pytest.raises(DataError, match=r"short\.txt: the training text has 16 tokens, but model.block_size 64"):
        fit(lm_config(model={"block_size": 64}), tmp_path / "short.txt", output)
    assert not output.exists()


def test_a_validation_text_too_short_for_a_loss_is_refused(tmp_path: Path) -> None:
    (tmp_path / "short.txt").write_text("To be or not to be, that is", encoding="utf-8")
    config = lm_config(model={"block_size": 8}, corpus={"validation_fraction": 0.01})
    with pytest.raises(DataError, match=r"the validation text \(the last 1%\) has 1 token; a loss needs two"):
        fit(config, tmp_path / "short.txt", tmp_path / "runs")


def test_no_validation_split_trains_without_validation_metrics(tmp_path: Path) -> None:
    config = lm_config(corpus={"validation_fraction": 0.0}, trainer={"max_steps": 4, "eval_every": 2})
    _, result = fit(config, SHAKESPEARE, tmp_path)
    assert result.metrics == {} and "val_loss" not in result.history[-1]


def test_a_text_column_and_a_bpe_tokenizer(tmp_path: Path) -> None:
    lines = SHAKESPEARE.read_text().splitlines()
    frame = pd.DataFrame({"speaker": range(len(lines)), "line": lines})
    config = lm_config(
        corpus={"column": "line", "separator": "\n"},
        tokenizer={"type": "bpe", "vocab_size": 300},
        trainer={"max_steps": 4, "eval_every": 4, "precision": "bf16"},
    )
    _, result = fit(config, frame, tmp_path)
    assert result.split_sizes["train"] < len(SHAKESPEARE.read_text()) * 0.9  # merges: fewer tokens than characters
    stream = dp.load(result.bundle_dir).generate("KING", max_new_tokens=8, seed=0, stream=True)
    assert isinstance("".join(stream), str) and stream.new_tokens == 8  # an untrained model's bytes: any text


def test_resuming_an_interrupted_run_ends_where_an_uninterrupted_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = lm_config(model={"dropout": 0.1}, trainer={"max_steps": 12, "eval_every": 4})
    full, full_result = fit(config, SHAKESPEARE, tmp_path, run_name="full")

    from deepwright.training.checkpoint import CheckpointFolder

    original = CheckpointFolder.save
    calls = []

    def save_then_interrupt(folder: CheckpointFolder, payload: dict) -> None:
        original(folder, payload)
        calls.append(folder)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointFolder, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(config, SHAKESPEARE, tmp_path, run_name="cut")
    monkeypatch.setattr(CheckpointFolder, "save", original)
    resumed, resumed_result = fit(config, SHAKESPEARE, tmp_path, resume_from=tmp_path / "cut")

    for name, tensor in full.predictor.model.state_dict().items():
        assert torch.equal(resumed.predictor.model.state_dict()[name], tensor), name
    assert [record["val_loss"] for record in resumed_result.history] == [r["val_loss"] for r in full_result.history]
    log = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [4, 8, 12]


@pytest.mark.slow
def test_torch_compile_trains_the_same_model_shape(tmp_path: Path) -> None:
    config = lm_config(trainer={"max_steps": 4, "eval_every": 4, "compile": True})
    _, result = fit(config, SHAKESPEARE, tmp_path)
    assert result.history[-1]["step"] == 4
    assert "_orig_mod" not in json.dumps(list(dp.load(result.bundle_dir).predictor.model.state_dict()))
