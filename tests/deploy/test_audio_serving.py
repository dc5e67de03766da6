"""An audio model served and exported: the clip comes inline in a request (a type that reads files is served as
media without declaring it), and its log-mel encoder exports to ONNX with the clip length fixed."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import deepwright as dp
from deepwright.deploy.predictor import Predictor
from deepwright.deploy.runtimes import OnnxRuntime
from deepwright.deploy.server import create_app
from deepwright.errors import DeployError
from tests.audio import audio_config, encode_sound, tone, tone_table


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tones")
    result = dp.Pipeline.from_config(audio_config(epochs=1)).fit(
        tone_table(folder), output_dir=folder / "runs", progress=False
    )
    return result.bundle_dir


def inline(samples: np.ndarray) -> str:
    return "data:audio/wav;base64," + base64.b64encode(encode_sound(samples)).decode("ascii")


def test_a_clip_sent_inline_is_predicted(bundle: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_bundle(bundle)
    samples = tone(1500.0, 0.3)
    with TestClient(create_app(predictor)) as client:
        [field] = client.get("/metadata").json()["inputs"]
        answer = client.post("/predict", json={"rows": [{"clip": inline(samples)}]})
        refused = client.post("/predict", json={"rows": [{"clip": "clips/low-0.wav"}]})
    assert (field["name"], field["type"], field["request_type"]) == ("clip", "audio", "media")
    assert answer.status_code == 200
    assert answer.json()["predictions"] == [predictor.predict({"clip": {"base64": inline(samples).split(",")[1]}})]
    assert refused.status_code == 422 and "the server reads no file paths" in refused.json()["error"]


def test_the_audio_model_exports_to_onnx(bundle: Path) -> None:
    report = dp.load(bundle).export()  # the run's test split: clips of the tone table
    assert report.onnx.max_abs_difference <= 1e-4 and report.onnx.rows_compared == 4
    frame = dp.load(bundle).predict(bundle.parent.parent.parent / "tones.csv")
    onnx_frame = dp.load(bundle, runtime="onnx").predict(bundle.parent.parent.parent / "tones.csv")
    assert np.allclose(onnx_frame["pitch_probability"], frame["pitch_probability"], atol=1e-5)
    with pytest.raises(DeployError, match=r"the ONNX graph takes input 'clip' as \(batch, \d+\), these rows give"):
        OnnxRuntime(bundle / "model.onnx")({"clip": np.zeros((2, 7), dtype=np.float16)})
