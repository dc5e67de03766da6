"""Registries: lookups, misses that list the choices and suggest the nearest name, and the built-in entries."""

from __future__ import annotations

import pytest

from deepwright.errors import ConfigError
from deepwright.registry import COMBINERS, ENCODERS, FEATURES, METRICS, Registry


def test_register_and_get() -> None:
    colours = Registry("colour")

    @colours.register("red")
    def red() -> str:
        return "#f00"

    assert colours.get("red") is red
    assert "red" in colours
    assert "blue" not in colours
    assert colours.names() == ["red"]


def test_miss_lists_choices_and_the_nearest_name() -> None:
    colours = Registry("colour")
    for name in ("red", "green", "blue"):
        colours.register(name)(object())
    with pytest.raises(ConfigError) as caught:
        colours.get("gren")
    message = str(caught.value)
    assert "unknown colour 'gren'" in message
    assert "did you mean 'green'?" in message
    assert "Choices: blue, green, red" in message


def test_miss_without_a_close_name_still_lists_choices() -> None:
    colours = Registry("colour")
    colours.register("red")(object())
    with pytest.raises(ConfigError) as caught:
        colours.get("zzzzzz")
    assert "did you mean" not in str(caught.value)
    assert "Choices: red" in str(caught.value)


def test_registering_a_name_twice_is_a_bug() -> None:
    colours = Registry("colour")
    colours.register("red")(object())
    with pytest.raises(ValueError, match="registered twice"):
        colours.register("red")(object())


def test_builtin_entries_are_registered() -> None:
    assert {"number", "binary", "category"} <= set(FEATURES.names())
    assert {"codes/embedding", "tokens/bag", "steps/rnn", "grid/convstack", "frames/transformer"} <= set(ENCODERS)
    assert "concat" in COMBINERS
    assert {"accuracy", "f1", "macro_f1", "roc_auc", "log_loss", "rmse", "mae", "r2"} <= set(METRICS.names())
    assert list(FEATURES) == sorted(FEATURES.names())


def test_builtin_miss_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'category'"):
        FEATURES.get("categroy")
