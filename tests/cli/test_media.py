"""What image and audio inputs share through the command line and `predict`, run once for each medium: config
mistakes, a medium as an output, an empty cell, and payloads that are not the medium at prediction time.

Each user mistake exits with status 2 and a one- or two-line 'error:' message naming the file, row and column,
with no traceback and nothing written. What only one medium does stays in tests/cli/test_images.py and
test_audio.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import deepwright as dp
from deepwright.errors import DataError
from tests.audio import FSDD, audio_project, encode_sound, spoil_audio
from tests.helpers import Outcome, assert_user_error, files_under, train_error, write_config
from tests.images import DIGITS, image_project, spoil_image

CLI = Callable[..., Outcome]

pytestmark = pytest.mark.usefixtures("no_plots")


@dataclass(frozen=True)
class Medium:
    """One medium's project, table and words, as the shared tests need them."""

    name: str  # the feature type
    column: str  # of the medium in the table
    target: str  # the table's output column
    data: str  # the table, relative to the project
    project: Callable[[Path, CLI], Path]  # (folder, cli) → the folder, with the table and config.yaml
    spoil: Callable[[Path, int, str], None]  # (project, row, cell): set one cell of the table
    good: Path  # a file of the fixture, for requests
    mime: str  # of a data URL holding one
    unreadable: str  # what the error says of a payload it cannot decode
    others: dict[str, Any] = field(default_factory=dict)  # the other inputs of a request row

    def request(self, cell: Any) -> dict[str, Any]:
        """A request row with `cell` as the medium's cell."""
        return {self.column: cell, **self.others}

    def payload(self) -> str:
        """The good file, base64-encoded."""
        return base64.b64encode(self.good.read_bytes()).decode()


IMAGE = Medium(
    name="image",
    column="image",
    target="label",
    data="data.csv",
    project=lambda folder, cli: image_project(folder),
    spoil=spoil_image,
    good=DIGITS / "one" / "0001.png",
    mime="image/png",
    unreadable="is not a readable image",
)
AUDIO = Medium(
    name="audio",
    column="path",
    target="digit",
    data="fsdd/manifest.csv",
    project=audio_project,
    spoil=spoil_audio,
    good=FSDD / "recordings" / "1_george_5.wav",
    mime="audio/wav",
    unreadable="is not a readable audio file",
    others={"speaker": "george"},
)
NOT_AN_IMAGE = base64.b64encode(b"just some text, not an image").decode()
NOT_AUDIO = base64.b64encode(b"just some text, not a sound").decode()
EMPTY_CLIP = base64.b64encode(encode_sound(np.zeros(0, dtype=np.float32))).decode()


@pytest.fixture(params=[IMAGE, AUDIO], ids=["image", "audio"])
def medium(request: pytest.FixtureRequest) -> Medium:
    return request.param


@pytest.fixture
def project(tmp_path: Path, cli: CLI, medium: Medium) -> Path:
    """The medium's project with a one-epoch config.yaml; each test spoils one thing."""
    return medium.project(tmp_path, cli)


@pytest.fixture
def bundle(request: pytest.FixtureRequest, medium: Medium) -> Path:
    """The medium's one-epoch bundle (tests/cli/conftest.py); tests must not modify it."""
    return request.getfixturevalue(f"{medium.name}_bundle")


def project_config(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "config.yaml").read_text())


# -- config mistakes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medium", "options", "expected"),
    [
        (IMAGE, {"channels": 2}, "input_features[0].channels: 2 is not a choice"),
        (IMAGE, {"missing": {"strategy": "mean"}}, "an image cannot be filled in"),
        (IMAGE, {"encoder": {"dims": [4, 8], "pools": [2]}}, "pools has 1 values for 2 layers"),
        (IMAGE, {"encoder": {"type": "resnett"}}, "did you mean 'resnet'?"),
        (IMAGE, {"augmentation": {"horizontal_flip": {"probability": 2}}}, "horizontal_flip.probability"),
        (IMAGE, {"augmentaton": {}}, "did you mean 'augmentation'?"),
        (IMAGE, {"size": [0, 8]}, "input_features[0].size"),
        (IMAGE, {"cache_memory_mb": -1}, "cache_memory_mb"),
        (AUDIO, {"crop": "middle"}, "input_features[0].crop: 'middle' is not a choice"),
        (AUDIO, {"missing": {"strategy": "mean"}}, "a clip cannot be filled in"),
        (AUDIO, {"encoder": {"type": "lstm"}}, "unknown type 'lstm'"),
        (AUDIO, {"encoder": {"type": "transformer", "dim": 10, "heads": 4}}, "dim 10 must be a multiple of heads 4"),
        (AUDIO, {"augmentation": {"noise": {"snr_db": [30, 10]}}}, "30 is above 10"),
        (AUDIO, {"augmentaton": {}}, "did you mean 'augmentation'?"),
        (AUDIO, {"mel_bins": 0}, "input_features[0].mel_bins"),
        (AUDIO, {"sample_rate": -8000}, "input_features[0].sample_rate"),
    ],
    ids=lambda value: value.name if isinstance(value, Medium) else None,
)
def test_config_mistakes(cli: CLI, project: Path, medium: Medium, options: dict[str, Any], expected: str) -> None:
    config = project_config(project)
    config["input_features"][0].update(options)
    write_config(project, config)
    before = files_under(project)
    completed = cli(
        "train", "--config", "config.yaml", "--data", medium.data, "--output", "runs", "--quiet", cwd=project
    )
    message = assert_user_error(completed, max_lines=3)
    assert expected in message
    assert files_under(project) == before


def test_the_medium_cannot_be_an_output(cli: CLI, project: Path, medium: Medium) -> None:
    config = project_config(project)
    config["output_features"] = [{"name": medium.column, "type": medium.name}]
    config["input_features"] = [{"name": medium.target, "type": "category"}]
    write_config(project, config)
    completed = cli("train", "--config", "config.yaml", "--data", medium.data, "--quiet", cwd=project)
    assert f"type '{medium.name}' cannot be an output" in assert_user_error(completed, max_lines=3)


# -- bad cells ----------------------------------------------------------------------------------------------


def test_an_empty_cell(cli: CLI, project: Path, medium: Medium) -> None:
    medium.spoil(project, 4, "")
    message = train_error(cli, project, medium.data)
    assert message.startswith(f"error: {medium.data}, row 4, column '{medium.column}': ")
    assert "empty" in message


# -- bad payloads at prediction time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medium", "cell", "reason"),
    [
        (IMAGE, {"base64": NOT_AN_IMAGE}, "the base64 payload is not a readable image"),
        (IMAGE, f"data:image/png;base64,{NOT_AN_IMAGE}", "the base64 payload is not a readable image"),
        (IMAGE, b"just some bytes", "is not a readable image"),
        (IMAGE, {"base64": "%%% not base64 %%%"}, "not valid base64"),
        (IMAGE, "data:image/png,not-base64", "must be base64-encoded"),
        (IMAGE, {"url": "https://example.com/a.png"}, '{"base64": "<base64 text>"}'),
        (IMAGE, "no/such/image.png", "does not exist"),
        (IMAGE, None, "empty"),
        (AUDIO, {"base64": NOT_AUDIO}, "the base64 payload is not a readable audio file"),
        (AUDIO, f"data:audio/wav;base64,{NOT_AUDIO}", "the base64 payload is not a readable audio file"),
        (AUDIO, {"base64": EMPTY_CLIP}, "the base64 payload holds no samples"),
        (AUDIO, {"base64": "%%% not base64 %%%"}, "not valid base64"),
        (AUDIO, "no/such/clip.wav", "does not exist"),
        (AUDIO, None, "empty"),
    ],
    ids=[
        *(f"image-{name}" for name in ("base64", "data-url", "raw-bytes", "invalid-base64", "plain-data-url")),
        *(f"image-{name}" for name in ("wrong-key", "missing-path", "null")),
        *(f"audio-{name}" for name in ("base64", "data-url", "empty-clip", "invalid-base64", "missing-path", "null")),
    ],
)
def test_predict_names_the_request_row_and_column_of_a_bad_payload(
    bundle: Path, medium: Medium, cell: Any, reason: str
) -> None:
    model = dp.load(bundle)
    good = medium.request({"base64": medium.payload()})
    with pytest.raises(DataError) as raised:
        model.predict([good, good, medium.request(cell)])
    error = raised.value
    assert (error.row, error.column, error.source) == (3, medium.column, "the request")
    assert str(error).startswith(f"the request, row 3, column '{medium.column}': ")
    assert reason in str(error)
    assert len(str(error).splitlines()) == 1


@pytest.mark.parametrize(
    ("medium", "not_the_medium", "as_data_url"),
    [(IMAGE, NOT_AN_IMAGE, True), (IMAGE, NOT_AN_IMAGE, False), (AUDIO, NOT_AUDIO, False)],
    ids=["image-data-url", "image-mapping", "audio-mapping"],
)
def test_predict_command_with_a_payload_that_is_not_the_medium(
    cli: CLI, bundle: Path, tmp_path: Path, medium: Medium, not_the_medium: str, as_data_url: bool
) -> None:
    texts = [medium.payload(), medium.payload(), not_the_medium]
    cells = [f"data:{medium.mime};base64,{text}" if as_data_url else {"base64": text} for text in texts]
    rows = [medium.request(cell) for cell in cells]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    before = files_under(tmp_path)
    completed = cli("predict", "--model", bundle, "--data", "requests.jsonl", "--output", "out.csv", cwd=tmp_path)
    message = assert_user_error(completed)
    assert message.startswith(f"error: requests.jsonl, row 3, column '{medium.column}': ")
    assert medium.unreadable.removeprefix("is ") in message
    assert files_under(tmp_path) == before
