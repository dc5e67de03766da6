"""Renamed config keys (widths are `dim`/`dims`, counts are `layers`): each old spelling still loads, for one
release, with a warning naming its key path and its new name; the JSON Schema shows only the new names."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from deepwright.config import (
    ConcatCombinerConfig,
    LanguageModelTrainerConfig,
    Strict,
    TrainerConfig,
    TrainingLoopConfig,
    dump_config,
    json_schema,
    load_config,
)
from deepwright.errors import ConfigError, DeepwrightWarning


def table(feature: dict | None = None, **sections: object) -> dict:
    """A table config with one input column `feature` (a number when None) and sections replaced."""
    inputs = [feature or {"name": "x", "type": "number"}]
    return {"input_features": inputs, "output_features": [{"name": "y", "type": "category"}], **sections}


def forecast(**sections: object) -> dict:
    """A forecast config of one output series with sections replaced."""
    return {"model_type": "forecast", "output_features": [{"name": "sales", "type": "number"}], **sections}


def column(kind: str, **options: object) -> dict:
    """An input column of type `kind` named c."""
    return {"name": "c", "type": kind, **options}


# (config with the old spellings, the same with the new ones, the warnings the old one gives)
RENAMES = {
    "combiner layers": (
        table(combiner={"layers": [8, 4]}),
        table(combiner={"dims": [8, 4]}),
        ["combiner.layers is deprecated; use combiner.dims"],
    ),
    "category embedding size": (
        table(column("category", encoder={"size": 8})),
        table(column("category", encoder={"dim": 8})),
        ["input_features[0].encoder.size is deprecated; use input_features[0].encoder.dim"],
    ),
    "text embedding_size and bag size": (
        table(column("text", embedding_size=8, encoder={"type": "bag", "size": 16})),
        table(column("text", embedding_dim=8, encoder={"type": "bag", "dim": 16})),
        [
            "input_features[0].embedding_size is deprecated; use input_features[0].embedding_dim",
            "input_features[0].encoder.size is deprecated; use input_features[0].encoder.dim",
        ],
    ),
    "sequence rnn hidden_size and output_size": (
        table(column("sequence", embedding_size=8, encoder={"hidden_size": 6, "output_size": 4})),
        table(column("sequence", embedding_dim=8, encoder={"dim": 6, "output_dim": 4})),
        [
            "input_features[0].embedding_size is deprecated; use input_features[0].embedding_dim",
            "input_features[0].encoder.hidden_size is deprecated; use input_features[0].encoder.dim",
            "input_features[0].encoder.output_size is deprecated; use input_features[0].encoder.output_dim",
        ],
    ),
    "sequence transformer size and feedforward": (
        table(column("sequence", encoder={"type": "transformer", "size": 8, "heads": 2, "feedforward": 16})),
        table(column("sequence", encoder={"type": "transformer", "dim": 8, "heads": 2, "feedforward_dim": 16})),
        [
            "input_features[0].encoder.size is deprecated; use input_features[0].encoder.dim",
            "input_features[0].encoder.feedforward is deprecated; use input_features[0].encoder.feedforward_dim",
        ],
    ),
    "timeseries conv1d channels": (
        table(column("timeseries", encoder={"type": "conv1d", "channels": [4, 6]})),
        table(column("timeseries", encoder={"type": "conv1d", "dims": [4, 6]})),
        ["input_features[0].encoder.channels is deprecated; use input_features[0].encoder.dims"],
    ),
    "image convstack channels": (
        table(column("image", encoder={"channels": [4, 8]})),
        table(column("image", encoder={"dims": [4, 8]})),
        ["input_features[0].encoder.channels is deprecated; use input_features[0].encoder.dims"],
    ),
    "image resnet width": (
        table(column("image", encoder={"type": "resnet", "width": 4})),
        table(column("image", encoder={"type": "resnet", "dim": 4})),
        ["input_features[0].encoder.width is deprecated; use input_features[0].encoder.dim"],
    ),
    "audio convstack channels (not replaced by the audio default)": (
        table(column("audio", encoder={"type": "convstack", "channels": [4]})),
        table(column("audio", encoder={"type": "convstack", "dims": [4]})),
        ["input_features[0].encoder.channels is deprecated; use input_features[0].encoder.dims"],
    ),
    "audio rnn hidden_size": (
        table(column("audio", encoder={"type": "rnn", "hidden_size": 8})),
        table(column("audio", encoder={"type": "rnn", "dim": 8})),
        ["input_features[0].encoder.hidden_size is deprecated; use input_features[0].encoder.dim"],
    ),
    "audio transformer size and feedforward": (
        table(column("audio", encoder={"type": "transformer", "size": 16, "feedforward": 32})),
        table(column("audio", encoder={"type": "transformer", "dim": 16, "feedforward_dim": 32})),
        [
            "input_features[0].encoder.size is deprecated; use input_features[0].encoder.dim",
            "input_features[0].encoder.feedforward is deprecated; use input_features[0].encoder.feedforward_dim",
        ],
    ),
    "forecast encoder and combiner": (
        forecast(encoder={"type": "rnn", "hidden_size": 8}, combiner={"layers": [16]}),
        forecast(encoder={"type": "rnn", "dim": 8}, combiner={"dims": [16]}),
        [
            "encoder.hidden_size is deprecated; use encoder.dim",
            "combiner.layers is deprecated; use combiner.dims",
        ],
    ),
}


@pytest.mark.parametrize(("old", "new", "expected"), RENAMES.values(), ids=RENAMES.keys())
def test_an_old_spelling_loads_with_a_warning_into_the_same_config(old: dict, new: dict, expected: list[str]) -> None:
    with pytest.warns(DeepwrightWarning) as caught:
        from_old = load_config(old)
    assert sorted(str(warning.message) for warning in caught) == sorted(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_new = load_config(new)
    assert from_old == from_new
    assert dump_config(from_old) == dump_config(from_new)


def test_the_warning_of_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(table(combiner={"layers": [8]})), encoding="utf-8")
    with pytest.warns(DeepwrightWarning, match=r"^.*config\.json: combiner\.layers is deprecated; use combiner\.dims$"):
        load_config(path)


def test_the_old_and_the_new_spelling_together_are_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(table(column("category", encoder={"size": 8, "dim": 4})))
    assert str(caught.value).splitlines()[1] == (
        "  input_features[0].encoder: dim and size (its deprecated name) are both given; keep dim"
    )


def test_a_schema_built_in_python_warns_with_its_class_name() -> None:
    with pytest.warns(DeepwrightWarning, match=r"^ConcatCombinerConfig\.layers is deprecated; use dims$"):
        combiner = ConcatCombinerConfig(layers=[8])
    assert combiner == ConcatCombinerConfig(dims=[8])


def renaming_schemas() -> list[type[Strict]]:
    """Every schema with a renamed key, subclasses included."""
    found, pending = [], [Strict]
    while pending:
        schema = pending.pop()
        pending.extend(schema.__subclasses__())
        if schema.renamed_keys:
            found.append(schema)
    return found


def test_every_rename_points_from_a_gone_key_to_a_field() -> None:
    schemas = renaming_schemas()
    assert len(schemas) >= 11
    for schema in schemas:
        for old, new in schema.renamed_keys.items():
            assert old not in schema.model_fields, (schema.__name__, old)
            assert new in schema.model_fields, (schema.__name__, new)


@pytest.mark.parametrize("model_type", ["ecd", "lm", "forecast"])
def test_the_json_schema_shows_only_the_new_names(model_type: str) -> None:
    definitions = json_schema(model_type).get("$defs", {})
    for schema in renaming_schemas():
        if schema.__name__ in definitions:
            properties = definitions[schema.__name__]["properties"]
            assert not set(schema.renamed_keys) & set(properties), schema.__name__
            assert set(schema.renamed_keys.values()) <= set(properties), schema.__name__


def test_both_trainers_share_one_base() -> None:
    shared = set(TrainingLoopConfig.model_fields)
    assert {"batch_size", "optimizer", "precision", "seed", "device", "threads", "checkpoint"} <= shared
    assert issubclass(TrainerConfig, TrainingLoopConfig) and issubclass(LanguageModelTrainerConfig, TrainingLoopConfig)
    assert (TrainerConfig().batch_size, LanguageModelTrainerConfig().batch_size) == (32, 12)
    assert (TrainerConfig().gradient_clip, LanguageModelTrainerConfig().gradient_clip) == (None, 1.0)
    assert LanguageModelTrainerConfig().optimizer.type == "adamw"


def test_loading_a_config_does_not_import_torch() -> None:
    code = "import sys, deepwright.config as c; c.load_config({'model_type': 'lm'}); print('torch' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
