"""The feature contract, checked for every registered feature type in every role it can take.

A new feature type fails here until it adds sample columns to `SAMPLES`; then it gets all of these checks. The
registry's types are the config's: a type registered without its config (or the reverse) fails here too.
"""

from __future__ import annotations

import inspect
import io
import json
import typing
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from pydantic import BaseModel, TypeAdapter

from deepwright.config import OUTPUT_TYPES, Config, FeatureConfig
from deepwright.deploy.schema import REQUEST_TYPES
from deepwright.errors import NotFittedError
from deepwright.features.base import Feature
from deepwright.registry import FEATURES


def _png(seed: int, size: tuple[int, int] = (6, 5), mode: str = "L") -> bytes:
    """A small random PNG, as an inline cell (raw bytes)."""
    rng = np.random.default_rng(seed)
    channels = () if mode == "L" else (3,)
    pixels = rng.integers(0, 256, (size[1], size[0], *channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(seed: int, seconds: float = 0.2, channels: int = 1, rate: int = 8000) -> bytes:
    """A short clip of noise, as an inline cell (the raw bytes of a WAV file)."""
    rng = np.random.default_rng(seed)
    samples = rng.uniform(-0.5, 0.5, (round(seconds * rate), channels)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV")
    return buffer.getvalue()


# type → (training values, values an input transforms later, values an output transforms later).
# Outputs never see missing cells (cleaning drops those rows) and training values are seen without them.
SAMPLES: dict[str, tuple[list[Any], list[Any], list[Any]]] = {
    "number": ([1.5, 2.0, None, 4.0, -3.0, 10.0, 2.5, 0.0], [0.5, None, 100.0, -7.0], [0.5, 100.0, -7.0]),
    "binary": (["yes", "no", "no", None, "yes", "yes", "no", "no"], ["no", None, "yes", "yes"], ["no", "yes"]),
    "category": (
        ["red", "green", "red", None, "blue", "red", "green", "blue"],
        ["blue", "purple", None, "red"],
        ["blue", "red", "purple"],
    ),
    "image": (
        [_png(seed) for seed in range(6)] + [_png(6, (8, 8)), _png(7, mode="RGB")],
        [_png(10), _png(11, (3, 9)), _png(12, mode="RGB"), _png(13)],
        [],
    ),
    "audio": (
        [_wav(seed) for seed in range(6)] + [_wav(6, seconds=0.3), _wav(7, channels=2)],
        [_wav(10), _wav(11, seconds=0.5), _wav(12, channels=2), _wav(13, rate=16000)],
        [],
    ),
    "text": (
        ["a red fox", "the green tree", None, "a red tree", "blue sky, red sun", "the fox", "", "green"],
        ["a purple fox", None, "red red red", ""],
        [],
    ),
    "sequence": (
        ["C4 E4 G4", '["E4", "G4"]', ["C4"], "G4 G4 G4 C4", "A4", "C4 A4", '["C4", 60]', "E4 C4"],
        ["C4 B4 E4", ["A4"], "[60, 61]", "G4 " * 300],
        [],
    ),
    "timeseries": (
        ["1 2 3", "[2.5, 3, 4]", [4.0, 5.0, 6.0], "3,4,5", "0 0 0", "-1 -2 -3", "[7, 8, 9]", "2 2 2"],
        ["1", "[1, 2, 3, 4, 5]", [0.5, 1.5], "10;20"],
        ["1 2 3", [3.0, 2.0, 1.0], "[0, 0, 0]"],
    ),
}

CASES = [
    (kind, role) for kind in FEATURES.names() for role in ("input", "output") if role == "input" or kind in OUTPUT_TYPES
]
NAME = "my.feature"  # a dot, as column names often have


def build(kind: str, role: str) -> Any:
    options = TypeAdapter(FeatureConfig).validate_python({"name": NAME, "type": kind})
    return FEATURES.get(kind)(options, role)


def samples(kind: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    if kind not in SAMPLES:
        pytest.fail(f"feature type {kind!r} has no sample columns in SAMPLES; add some to run its contract test")
    train, later_input, later_output = SAMPLES[kind]
    if role == "output":
        train, later = [value for value in train if value is not None], later_output
    else:
        later = later_input
    return np.array(train, dtype=object), np.array(later, dtype=object)


def fitted(kind: str, role: str) -> tuple[Any, np.ndarray, np.ndarray]:
    feature = build(kind, role)
    train, later = samples(kind, role)
    feature.fit(train)
    return feature, train, later


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_identity(kind: str, role: str) -> None:
    feature = build(kind, role)
    assert feature.name == NAME
    assert feature.role == role
    assert isinstance(feature.passthrough, bool)


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_transform_shapes_and_dtypes(kind: str, role: str) -> None:
    feature, train, later = fitted(kind, role)
    for values in (train, later):
        array = feature.transform(values)
        assert isinstance(array, np.ndarray)
        assert len(array) == len(values)
        if role == "input" and feature.passthrough:
            assert array.dtype == np.float32
            assert array.shape == (len(values), feature.width())
            assert np.isfinite(array).all()
        elif role == "input":
            encoded = feature.build_encoder()(torch.from_numpy(array))
            assert encoded.shape == (len(values), feature.width())
        else:
            assert array.ndim == (2 if kind == "timeseries" else 1)  # a series target is a vector per row
            assert array.dtype in (np.float32, np.int64)


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_state_is_json_and_restores_identical_transforms(kind: str, role: str) -> None:
    feature, train, later = fitted(kind, role)
    text = json.dumps(feature.state(), allow_nan=False)
    fresh = build(kind, role)
    fresh.load_state(json.loads(text))
    assert fresh.state() == feature.state()
    for values in (train, later):
        expected, restored = feature.transform(values), fresh.transform(values)
        assert restored.dtype == expected.dtype
        assert np.array_equal(restored, expected, equal_nan=True)  # NaN marks the padding of a series
    if role == "input":
        assert fresh.width() == feature.width()


@pytest.mark.parametrize(("kind", "role"), [case for case in CASES if case[1] == "output"])
def test_output_head_loss_metrics_and_postprocess(kind: str, role: str) -> None:
    feature, train, _ = fitted(kind, role)
    target = torch.from_numpy(feature.transform(train))
    torch.manual_seed(0)
    head = feature.build_head(6)
    logits = head(torch.randn(len(train), 6))
    loss = feature.loss(logits, target)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert all(parameter.grad is not None for parameter in head.parameters())

    metrics = feature.metrics(target.numpy(), logits.detach().numpy())
    assert metrics
    json.dumps(metrics, allow_nan=False)
    for name, value in metrics.items():
        assert isinstance(value, (float, int, dict)) or value is None, name

    columns = feature.postprocess(logits.detach().numpy())
    assert f"{NAME}_prediction" in columns
    for name, column in columns.items():
        assert name.startswith(NAME)
        assert len(column) == len(train)


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_fit_relearns_from_scratch(kind: str, role: str) -> None:
    """Fitting twice on the same data gives the same state: nothing accumulates between fits."""
    feature, train, _ = fitted(kind, role)
    first = json.dumps(feature.state(), sort_keys=True)
    feature.fit(train)
    assert json.dumps(feature.state(), sort_keys=True) == first


@pytest.mark.parametrize(("kind", "role"), CASES)
def test_transform_before_fit_says_to_fit(kind: str, role: str) -> None:
    _, later = samples(kind, role)
    with pytest.raises(NotFittedError, match="fit"):
        build(kind, role).transform(later)


def type_tags(annotation: Any) -> set[str]:
    """The `type` tags of the config classes in an annotation (a list of a discriminated union, a union, …)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return set(typing.get_args(annotation.model_fields["type"].annotation))
    return set().union(*(type_tags(argument) for argument in typing.get_args(annotation)))


def test_the_registered_types_are_the_config_unions_tags() -> None:
    inputs = type_tags(Config.model_fields["input_features"].annotation)
    outputs = type_tags(Config.model_fields["output_features"].annotation)
    assert set(FEATURES.names()) == inputs
    assert set(OUTPUT_TYPES) <= outputs <= inputs


# Every method and attribute of the contract (`deepwright.features.base.Feature`), the optional hooks included.
CONTRACT_METHODS = [
    "fit",
    "transform",
    "transform_many",
    "locate",
    "state",
    "load_state",
    "encoder_input",
    "width",
    "build_encoder",
    "request_hints",
    "accepts_missing",
    "build_head",
    "loss",
    "metrics",
    "postprocess",
]


@pytest.mark.parametrize("kind", FEATURES.names())
def test_every_registered_type_implements_the_contract(kind: str) -> None:
    cls = FEATURES.get(kind)
    assert issubclass(cls, Feature) and not inspect.isabstract(cls)
    assert set(CONTRACT_METHODS) <= {name for name in dir(Feature) if not name.startswith("_")}
    feature, _, later = fitted(kind, "input")
    for name in CONTRACT_METHODS:
        assert callable(getattr(feature, name)), name
    assert isinstance(feature.passthrough, bool) and isinstance(feature.reads_files, bool)
    assert feature.request_type in REQUEST_TYPES
    assert feature.cache_dir is None
    assert isinstance(feature.accepts_missing(), bool)
    hints = feature.request_hints()
    assert isinstance(hints, dict)
    json.dumps(hints)
    together = cls.transform_many([feature], {NAME: later})
    assert set(together) <= {NAME}
    if together:
        assert np.array_equal(together[NAME], feature.transform(later))
    assert feature.locate(feature.transform(later), np.arange(1, len(later) + 1), "data.csv") is None


@pytest.mark.parametrize("kind", OUTPUT_TYPES)
def test_an_output_names_its_classes_or_none(kind: str) -> None:
    feature, _, _ = fitted(kind, "output")
    assert feature.labels_ is None or len(feature.labels_) >= 2


def encoder_types(kind: str) -> list[str]:
    """The encoder types a feature type's config offers (none for a passthrough type)."""
    field = type(build(kind, "input").options).model_fields.get("encoder")
    return sorted(type_tags(field.annotation)) if field else []


ENCODER_CASES = [(kind, encoder) for kind in FEATURES.names() for encoder in encoder_types(kind)]


@pytest.mark.parametrize(("kind", "encoder"), ENCODER_CASES)
def test_every_encoder_type_of_a_feature_builds_and_encodes_to_its_width(
    kind: str, encoder: str, request: pytest.FixtureRequest
) -> None:
    # a pretrained encoder needs its checkpoint folder (a tiny random BERT, tests/pretrained.py)
    needs = {"path": str(request.getfixturevalue("bert_checkpoints")("bert"))} if encoder == "pretrained" else {}
    settings = {"name": NAME, "type": kind, "encoder": {"type": encoder, **needs}}
    options = TypeAdapter(FeatureConfig).validate_python(settings)
    feature = FEATURES.get(kind)(options, "input")
    train, later = samples(kind, "input")
    feature.fit(train)
    model = feature.build_encoder().eval()
    assert model(torch.from_numpy(feature.transform(later))).shape == (len(later), feature.width())
