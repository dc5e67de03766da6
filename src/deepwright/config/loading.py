"""Loading and saving configs: the schema that `model_type` chooses, YAML and JSON files, and the JSON Schema."""

from __future__ import annotations

import difflib
import json
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from deepwright.config.base import RENAMES_REPORTED, renamed_key_paths
from deepwright.config.describe import describe_issue
from deepwright.config.forecast import ForecastConfig
from deepwright.config.language import LanguageModelConfig
from deepwright.config.table import Config
from deepwright.errors import ConfigError, DeepwrightWarning

# The config class of each model_type.
MODEL_TYPES: dict[str, type[BaseModel]] = {"ecd": Config, "lm": LanguageModelConfig, "forecast": ForecastConfig}


AnyConfig = Config | LanguageModelConfig | ForecastConfig


def load_config(source: str | Path | dict | AnyConfig) -> AnyConfig:
    """Read and validate a config from a YAML/JSON path, a dict, or an existing `Config`.

    `model_type` chooses the schema: `ecd` (the default, a `Config`), `lm` (a `LanguageModelConfig`) or
    `forecast` (a `ForecastConfig`).
    Every problem is reported in one `ConfigError`, one line each, naming the key path; an unknown key
    gets the nearest valid key as a suggestion. A key spelled as before a rename is read, with a
    `DeepwrightWarning` naming its path and its new name.
    """
    if isinstance(source, (Config, LanguageModelConfig, ForecastConfig)):
        return source
    origin = None
    if isinstance(source, (str, Path)):
        origin = str(source)
        data = _read_config_file(Path(source))
    elif isinstance(source, dict):
        data = source
    else:
        raise ConfigError(f"a config is a file path, a dict or a Config, not {type(source).__name__}")
    if not isinstance(data, dict):
        raise ConfigError(f"{origin or 'config'}: the top level must be a mapping of keys, e.g. 'input_features:'")
    prefix = f"{origin}: " if origin else ""
    root = _root_model(data, prefix)
    try:
        config = root.model_validate(data, context={RENAMES_REPORTED: True})
    except ValidationError as error:
        lines = [describe_issue(issue, root) for issue in error.errors()]
        unique = list(dict.fromkeys(lines))
        raise ConfigError(prefix + "\n  ".join(["invalid config:", *unique])) from None
    for old, new in renamed_key_paths(data, config):
        warnings.warn(f"{prefix}{old} is deprecated; use {new}", DeepwrightWarning, stacklevel=2)
    return config


def dump_config(config: Config) -> dict:
    """The config as plain JSON-able data, every default filled in (what a run and a bundle record)."""
    return config.model_dump(mode="json")


def json_schema(model_type: str = "ecd") -> dict:
    """The JSON Schema of a config file of `model_type` ('ecd' or 'lm'), for editors that complete and check YAML."""
    return MODEL_TYPES[model_type].model_json_schema()


def _root_model(data: dict, prefix: str) -> type[BaseModel]:
    """The schema that `data`'s `model_type` names (ecd when absent)."""
    model_type = data.get("model_type", "ecd")
    if model_type not in MODEL_TYPES:
        close = difflib.get_close_matches(str(model_type), MODEL_TYPES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        choices = ", ".join(MODEL_TYPES)
        raise ConfigError(
            f"{prefix}invalid config:\n  model_type: {model_type!r} is not a choice; {hint}choices: {choices}"
        )
    return MODEL_TYPES[model_type]


def _read_config_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config ({error})") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: not valid YAML{where}: {reason}") from None
