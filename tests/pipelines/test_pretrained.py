"""A tiny random BERT fine-tuned end to end: trained on generated reviews, saved, loaded with no checkpoint folder
left, its encoder equal to transformers' on the same weights, served, exported to ONNX with parity; `init
--pretrained`; a bad checkpoint is exit status 2."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import deepwright as dp
from deepwright.config import load_config
from deepwright.deploy.predictor import Predictor
from deepwright.models.pretrained import PretrainedEncoder
from tests.helpers import Outcome, assert_user_error, train_error, write_config, write_frame
from tests.pretrained import reviews

transformers = pytest.importorskip("transformers")

ROWS = ["the film was superb and lovely", "a dull , awful plot", "very good", "bad bad movie"]


def tuned_config(path: Path, **encoder: object) -> dict:
    """A review → sentiment classifier over the pretrained encoder at `path`."""
    return {
        "input_features": [
            {"name": "review", "type": "text", "max_length": 16, "encoder": {"type": "pretrained", "path": str(path)}}
            | ({"encoder": {"type": "pretrained", "path": str(path), **encoder}} if encoder else {})
        ],
        "output_features": [{"name": "sentiment", "type": "category"}],
        "preprocessing": {"split": {"method": "stratified", "fractions": [0.7, 0.15, 0.15], "seed": 1}},
        "trainer": {
            "epochs": 3,
            "batch_size": 16,
            "optimizer": {"type": "adamw", "lr": 0.003},
            "schedule": {"type": "linear", "warmup_fraction": 0.1},
            "gradient_clip": 1.0,
            "gradient_checkpointing": True,  # reaches the pretrained model's own
            "checkpoint": False,
        },
    }


@dataclass
class Tuned:
    """The bundle of a fine-tuned tiny BERT (its checkpoint folder deleted) and the original checkpoint."""

    bundle: Path
    checkpoint: Path
    pipeline: dp.Pipeline
    metrics: dict


@pytest.fixture(scope="module")
def tuned(bert_checkpoints: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    folder = tmp_path_factory.mktemp("tuned")
    copy = shutil.copytree(bert_checkpoints("bert"), folder / "checkpoint")
    config = tuned_config(copy, lr=1e-3)
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(reviews(300), output_dir=folder / "runs", run_name="reviews", progress=False)
    shutil.rmtree(copy)  # the bundle must serve without it
    return Tuned(result.bundle_dir, bert_checkpoints("bert"), pipeline, result.metrics)


def test_the_fine_tune_learns_and_the_bundle_predicts_the_same(tuned: Tuned) -> None:
    assert tuned.metrics["test"]["sentiment"]["accuracy"] >= 0.9
    loaded = Predictor.from_bundle(tuned.bundle)
    rows = [{"review": text} for text in ROWS]
    assert loaded.predict(rows) == tuned.pipeline.predict(rows)
    assert [row["sentiment_prediction"] for row in loaded.predict(rows)] == [
        "positive",
        "negative",
        "positive",
        "negative",
    ]


def test_the_loaded_encoder_is_transformers_forward_on_the_fine_tuned_weights(tuned: Tuned) -> None:
    loaded = Predictor.from_bundle(tuned.bundle)
    (encoder,) = [module for module in loaded.model.modules() if isinstance(module, PretrainedEncoder)]
    reference = transformers.AutoModel.from_pretrained(tuned.checkpoint, local_files_only=True).eval()
    reference.load_state_dict(encoder.model.state_dict())
    (feature,) = loaded.features.inputs
    ids = torch.from_numpy(feature.transform(np.array(ROWS, dtype=object)))
    mask = (ids != 0).long()
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        assert (encoder(ids) - expected).abs().max() <= 1e-5


def test_served_and_exported_to_onnx_with_parity(tuned: Tuned, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from deepwright.deploy.server import create_app
    from deepwright.deploy.service import ServerSettings

    predictor = Predictor.from_bundle(tuned.bundle)
    rows = [{"review": text} for text in ROWS]
    with TestClient(create_app(predictor, ServerSettings()), raise_server_exceptions=False) as client:
        metadata = client.get("/metadata").json()
        assert [entry["type"] for entry in metadata["inputs"]] == ["text"]
        response = client.post("/predict", json={"rows": rows})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": predictor.predict(rows)}
    bundle = shutil.copytree(tuned.bundle, tmp_path / "model")
    report = dp.load(bundle).export()
    assert report.onnx.max_abs_difference <= 1e-4
    onnx = Predictor.from_bundle(bundle, runtime="onnx")
    for ours, theirs in zip(onnx.predict(rows), predictor.predict(rows)):
        assert ours["sentiment_prediction"] == theirs["sentiment_prediction"]
        assert abs(ours["sentiment_probability"] - theirs["sentiment_probability"]) <= 1e-4


def test_init_pretrained_reads_every_text_column_with_the_checkpoint(
    cli: Callable[..., Outcome], bert_checkpoints: Callable[[str], Path], tmp_path: Path
) -> None:
    write_frame(reviews(40), tmp_path / "reviews.csv")
    checkpoint = bert_checkpoints("bert")
    outcome = cli(
        "init",
        "--data",
        "reviews.csv",
        "--target",
        "sentiment",
        "--pretrained",
        checkpoint,
        "-o",
        "c.yaml",
        cwd=tmp_path,
    )
    assert outcome.returncode == 0, outcome.stderr
    config = load_config(yaml.safe_load((tmp_path / "c.yaml").read_text(encoding="utf-8")))
    (text,) = config.input_features
    assert text.encoder.type == "pretrained" and text.encoder.path == str(checkpoint)
    assert text.max_length == 32  # 16 words at most (init's least), about 1.3 tokens a word, [CLS] and [SEP]
    assert config.trainer.schedule.type == "linear" and config.trainer.optimizer.type == "adamw"
    assert "pretrained encoder" in outcome.stderr
    header = (tmp_path / "c.yaml").read_text(encoding="utf-8")
    assert "4 epochs at batch 16" in header and "training rows → up to" not in header  # only the schedule it writes


def test_a_hub_name_or_a_broken_checkpoint_is_exit_status_2(
    cli: Callable[..., Outcome], bert_checkpoints: Callable[[str], Path], tmp_path: Path
) -> None:
    write_frame(reviews(40), tmp_path / "reviews.csv")
    write_config(tmp_path, tuned_config(Path("bert-base-uncased")))
    assert "is not a local folder" in train_error(cli, tmp_path, "reviews.csv")
    broken = shutil.copytree(bert_checkpoints("bert"), tmp_path.parent / f"{tmp_path.name}-broken")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    write_config(tmp_path, tuned_config(broken))
    assert "is not a readable safetensors file" in train_error(cli, tmp_path, "reviews.csv")
    outcome = cli("init", "--data", "reviews.csv", "--target", "sentiment", "--pretrained", "bert-base", cwd=tmp_path)
    assert "is not a local folder" in assert_user_error(outcome)
