"""Audio through the whole pipeline (Python API): tones that a model must tell apart, audio beside a table column in
one model, every encoder, the decoded-clip cache and lazy decoding, seeded augmentation, and predictions from
paths and from base64."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import deepwright as dp
from tests.audio import audio_config, tone_table
from tests.helpers import Trained

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tones.csv: 16 tone clips (8 low, 8 high; half train, a quarter validation, a quarter test), read-only."""
    return tone_table(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def tone_run(tones: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model trained once on the tones (12 epochs of batch 4); tests must not modify it."""
    pipeline = dp.Pipeline.from_config(audio_config(epochs=12, batch_size=4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
        result = pipeline.fit(tones, output_dir=tmp_path_factory.mktemp("out") / "runs", progress=False)
    return Trained(pipeline, result, tones)


def rows_of(tones: Path, encode: str = "path") -> list[dict[str, Any]]:
    """The tone clips as request rows: by absolute path, as {"base64": …}, or as a data URL."""
    frame = pd.read_csv(tones)
    rows = []
    for clip, level in zip(frame["clip"], frame["level"]):
        path = tones.parent / clip
        text = base64.b64encode(path.read_bytes()).decode()
        cell = {"path": str(path), "base64": {"base64": text}, "data-url": f"data:audio/wav;base64,{text}"}[encode]
        rows.append({"clip": cell, "level": level})
    return rows


def test_a_model_learns_to_tell_low_from_high_tones(tone_run: Trained) -> None:
    metrics = tone_run.result.metrics
    assert metrics["test"]["pitch"]["accuracy"] == 1.0
    assert metrics["validation"]["pitch"]["accuracy"] == 1.0
    assert tone_run.result.history[-1]["train_loss"] < tone_run.result.history[0]["train_loss"]


def test_the_run_records_the_learned_audio_preprocessing(tone_run: Trained) -> None:
    run_dir = tone_run.result.run_dir
    state = json.loads((run_dir / "preprocessing.json").read_text())["inputs"]["clip"]
    assert state["sample_rate"] == 8000
    assert state["samples"] == 3200  # the longest clips are 0.2-0.4 s: 0.4 s at 8 kHz
    assert len(state["mean"]) == len(state["std"]) == 16
    bundle = json.loads((tone_run.result.bundle_dir / "preprocessing.json").read_text())
    assert bundle["inputs"]["clip"] == state
    cache = run_dir.parent / ".cache"
    assert len(list(cache.glob("audio-*.f16"))) == 3  # train, validation, test
    assert not list(cache.glob("*.partial"))


@pytest.mark.parametrize("encode", ["base64", "data-url"])
def test_the_bundle_predicts_the_same_from_paths_and_from_base64(tone_run: Trained, encode: str) -> None:
    model = dp.load(tone_run.result.bundle_dir)
    by_path = model.predict(rows_of(tone_run.data, "path"))
    inline = model.predict(rows_of(tone_run.data, encode))
    assert by_path == inline
    frame = pd.read_csv(tone_run.data)
    assert [row["pitch_prediction"] for row in by_path] == frame["pitch"].tolist()


def test_the_bundle_predicts_a_table_of_paths_relative_to_it(tone_run: Trained) -> None:
    frame = pd.read_csv(tone_run.data)
    predictions = dp.load(tone_run.result.bundle_dir).predict(tone_run.data)
    assert predictions["pitch_prediction"].tolist() == frame["pitch"].tolist()
    assert dp.load(tone_run.result.bundle_dir).evaluate(tone_run.data)["pitch"]["accuracy"] == 1.0


def test_a_served_audio_field_takes_inline_media_and_its_example_predicts(tone_run: Trained) -> None:
    from deepwright.deploy.schema import example_row, input_fields

    model = dp.load(tone_run.result.bundle_dir)
    [field] = input_fields(model.predictor.features)
    assert (field.name, field.feature_type, field.request_type, field.nullable) == ("clip", "audio", "media", False)
    assert field.hints["accept"] == "audio/*"
    prediction = model.predict(example_row([field]))
    assert prediction["pitch_prediction"] in ("low", "high")


def test_audio_and_a_table_column_in_one_model(tones: Path, tmp_path: Path) -> None:
    config = audio_config(epochs=2, inputs=[{"name": "level", "type": "number"}])
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(tones, output_dir=tmp_path / "runs", progress=False)
    model = pipeline.predictor.model
    assert model.input_names == ["__passthrough__", "clip"]
    assert model.combiner is not None and len(model.encoders) == 2
    rows = rows_of(tones)
    changed = [{**row, "level": row["level"] + 100.0} for row in rows]  # the number column reaches the output
    assert pipeline.predict(rows) != pipeline.predict(changed)
    assert set(result.metrics["test"]["pitch"]) >= {"accuracy", "macro_f1"}


@pytest.mark.parametrize(
    "encoder",
    [
        {"type": "resnet", "dim": 4, "blocks": [1, 1]},
        {"type": "conv1d", "dims": [8, 8]},
        {"type": "rnn", "dim": 8, "layers": 1},
        {"type": "rnn", "cell": "lstm", "dim": 8, "layers": 1, "bidirectional": False},
        {"type": "transformer", "dim": 16, "heads": 2, "layers": 1, "feedforward_dim": 32},
    ],
    ids=["resnet", "conv1d", "gru", "lstm", "transformer"],
)
def test_every_encoder_trains_saves_and_reloads(tones: Path, tmp_path: Path, encoder: dict) -> None:
    pipeline = dp.Pipeline.from_config(audio_config(epochs=2, audio={"encoder": encoder}))
    result = pipeline.fit(tones, output_dir=tmp_path / "runs", progress=False)
    assert all(np.isfinite(record["train_loss"]) for record in result.history)
    rows = rows_of(tones)
    assert dp.load(result.bundle_dir).predict(rows) == pipeline.predict(rows)


@pytest.mark.usefixtures("no_decoding")  # after tone_run (module scope) has decoded the clips
def test_a_second_run_reuses_the_cache(tone_run: Trained) -> None:
    output = tone_run.result.run_dir.parent
    cached = sorted((output / ".cache").iterdir())
    config = audio_config(epochs=1)
    dp.Pipeline.from_config(config).fit(tone_run.data, output_dir=output, run_name="again", progress=False)
    assert sorted((output / ".cache").iterdir()) == cached


def test_lazy_decoding_in_workers_trains_the_same_model(tones: Path, tmp_path: Path) -> None:
    """`cache_memory_mb: 0`: batches are decoded in DataLoader workers; with no augmentation the run matches the
    cached one."""
    cached = dp.Pipeline.from_config(audio_config(epochs=2)).fit(tones, output_dir=tmp_path / "a", progress=False)
    lazy = dp.Pipeline.from_config(audio_config(epochs=2, audio={"cache_memory_mb": 0}))
    result = lazy.fit(tones, output_dir=tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / ".cache").exists()
    assert [record["train_loss"] for record in result.history] == pytest.approx(
        [record["train_loss"] for record in cached.history], rel=1e-5
    )
    assert result.metrics["test"]["loss"] == pytest.approx(cached.metrics["test"]["loss"], rel=1e-5)


def test_augmentation_follows_the_seed(tones: Path, tmp_path: Path) -> None:
    augmentation = {"time_shift": {"probability": 1.0}, "noise": {"probability": 1.0}, "time_mask": {}}
    histories = []
    for seed, name in ((1, "first"), (1, "again"), (2, "other")):
        config = audio_config(epochs=2, seed=seed, audio={"augmentation": augmentation})
        result = dp.Pipeline.from_config(config).fit(tones, output_dir=tmp_path, run_name=name, progress=False)
        histories.append([record["train_loss"] for record in result.history])
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]
