"""The config schema: defaults, readable errors (key path, nearest key, all problems at once), files, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepwright.config import Config, dump_config, json_schema, load_config
from deepwright.errors import ConfigError

MINIMAL = {
    "input_features": [{"name": "x", "type": "number"}],
    "output_features": [{"name": "y", "type": "category"}],
}


def with_(**sections: object) -> dict:
    """MINIMAL with top-level sections replaced."""
    return {**MINIMAL, **sections}


def config_error(source: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(source)
    return str(caught.value)


def test_defaults_are_the_documented_best_practice() -> None:
    config = load_config(MINIMAL)
    assert config.model_type == "ecd"
    assert config.combiner.type == "concat"
    assert config.combiner.dims == [128]
    assert config.combiner.activation == "relu"
    assert config.trainer.epochs == 10
    assert config.trainer.batch_size == 32
    assert config.trainer.optimizer.type == "adam"
    assert config.trainer.optimizer.lr == pytest.approx(1e-3)
    assert config.trainer.schedule.type == "constant"
    assert config.trainer.early_stopping is None
    assert config.trainer.precision == "fp32"
    assert config.trainer.seed == 42
    split = config.preprocessing.split
    assert (split.method, split.fractions, split.seed) == ("random", [0.8, 0.1, 0.1], 42)
    number = config.input_features[0]
    assert number.normalization == "zscore"
    assert number.missing.strategy is None
    assert config.output_features[0].encoder.type == "embedding"


def test_config_object_and_dump_round_trip() -> None:
    config = load_config(with_(trainer={"epochs": 3, "optimizer": {"type": "sgd", "lr": 0.1}}))
    assert load_config(config) is config
    dumped = dump_config(config)
    json.dumps(dumped)  # plain JSON data
    assert load_config(dumped) == config
    assert dumped["trainer"]["epochs"] == 3


def test_two_fractions_mean_train_and_test() -> None:
    config = load_config(with_(preprocessing={"split": {"fractions": [0.75, 0.25]}}))
    assert config.preprocessing.split.fractions == [0.75, 0.0, 0.25]


def test_combiner_type_defaults_to_concat() -> None:
    config = load_config(with_(combiner={"dims": [8, 4]}))
    assert config.combiner.type == "concat"
    assert config.combiner.dims == [8, 4]


def test_unknown_key_suggests_the_nearest_key() -> None:
    message = config_error(with_(trainer={"epoch": 3}))
    assert "trainer.epoch" in message
    assert "did you mean 'epochs'" in message


def test_unknown_key_inside_a_feature_names_its_position() -> None:
    message = config_error(with_(input_features=[{"name": "x", "type": "number", "normalisation": "minmax"}]))
    assert "input_features[0].normalisation" in message
    assert "did you mean 'normalization'" in message


def test_unknown_top_level_key_suggests() -> None:
    message = config_error(with_(trainr={"epochs": 3}))
    assert "trainr" in message
    assert "did you mean 'trainer'" in message


def test_wrong_type_names_the_key_path_and_the_value() -> None:
    message = config_error(with_(trainer={"epochs": "ten"}))
    assert "trainer.epochs" in message
    assert "'ten'" in message


def test_wrong_type_deep_inside_names_the_full_path() -> None:
    message = config_error(with_(trainer={"optimizer": {"lr": "fast"}}))
    assert "trainer.optimizer.lr" in message


def test_unknown_feature_type_suggests_and_lists_choices() -> None:
    message = config_error(with_(input_features=[{"name": "x", "type": "numbr"}]))
    assert "input_features[0].type" in message
    assert "did you mean 'number'" in message
    for choice in ("number", "binary", "category"):
        assert choice in message


def test_unknown_encoder_type_suggests() -> None:
    features = [{"name": "x", "type": "category", "encoder": {"type": "embeding"}}]
    message = config_error(with_(input_features=features))
    assert "did you mean 'embedding'" in message


def test_missing_feature_type_lists_choices() -> None:
    message = config_error(with_(input_features=[{"name": "x"}]))
    assert "input_features[0]" in message
    assert "type" in message
    assert "number" in message


def test_encoder_type_defaults_to_embedding_when_options_are_given() -> None:
    config = load_config(with_(input_features=[{"name": "c", "type": "category", "encoder": {"dim": 8}}]))
    assert config.input_features[0].encoder.type == "embedding"
    assert config.input_features[0].encoder.dim == 8


def test_several_problems_are_reported_at_once_one_per_line() -> None:
    message = config_error(
        with_(
            trainer={"epoch": 3, "batch_size": "many"},
            combiner={"dimz": [3]},
            input_features=[{"name": "x", "type": "numbr"}],
        )
    )
    lines = message.splitlines()
    assert lines[0] == "invalid config:"
    assert any("trainer.epoch" in line and "'epochs'" in line for line in lines)
    assert any("trainer.batch_size" in line for line in lines)
    assert any("combiner.dimz" in line and "'dims'" in line for line in lines)
    assert any("input_features[0].type" in line for line in lines)
    assert len(lines) == 5


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"preprocessing": {"split": {"fractions": [0.5, 0.1]}}}, "sum to 1"),
        ({"preprocessing": {"split": {"fractions": [0.5, 0.2, 0.2, 0.1]}}}, "[train, validation, test]"),
        ({"preprocessing": {"split": {"method": "time"}}}, "time_column"),
        (
            {"input_features": [{"name": "x", "type": "number", "missing": {"strategy": "constant"}}]},
            "fill_value",
        ),
        ({"output_features": [{"name": "x", "type": "number"}]}, "used twice"),
        ({"input_features": [{"name": "__passthrough__", "type": "number"}]}, "reserved"),
        ({"input_features": []}, "input_features"),
        ({"trainer": {"epochs": 0}}, "trainer.epochs"),
        ({"trainer": {"optimizer": {"type": "adm"}}}, "trainer.optimizer.type"),
    ],
)
def test_invalid_values_are_explained(section: dict, expected: str) -> None:
    assert expected in config_error(with_(**section))


def test_yaml_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "input_features:\n  - {name: x, type: number}\noutput_features:\n  - {name: y, type: binary}\n"
        "trainer:\n  epochs: 4\n",
        encoding="utf-8",
    )
    assert load_config(path).trainer.epochs == 4
    assert load_config(str(path)).output_features[0].type == "binary"


def test_json_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(with_(trainer={"epochs": 2})), encoding="utf-8")
    assert load_config(path).trainer.epochs == 2


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "input_features:\n  - {name: x, type: number}\noutput_features:\n  - {name: y, type: binary}\n"
        "trainer:\n  epoch: 4\n",
        encoding="utf-8",
    )
    message = config_error(path)
    assert message.startswith(str(path))
    assert "did you mean 'epochs'" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "input_features:\n  - {name: x, type: number}\ntrainer:\n  epochs: 3: 4\n",
        encoding="utf-8",
    )
    message = config_error(path)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "line 4" in message


def test_missing_config_file(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nope.yaml")
    assert "nope.yaml" in message
    assert "no such config file" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert "mapping" in config_error(path)


def test_other_sources_are_refused() -> None:
    assert "not int" in config_error(42)


def test_json_schema_export() -> None:
    schema = json_schema()
    text = json.dumps(schema)  # JSON-serialisable as a whole
    assert schema["type"] == "object"
    assert {"input_features", "output_features", "trainer", "combiner", "preprocessing"} <= set(schema["properties"])
    assert set(schema["required"]) == {"input_features", "output_features"}
    definitions = schema["$defs"]
    assert definitions["NumberFeatureConfig"]["additionalProperties"] is False
    assert definitions["TrainerConfig"]["properties"]["epochs"]["default"] == 10
    assert "discriminator" in text  # the feature union is tagged on 'type', which editors use to complete
    assert schema == Config.model_json_schema()
