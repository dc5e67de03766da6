"""GPT-2-family checkpoints on disk for a language model's `init_from`: the folder checked, its config.json read
(no torch), and the language model's config completed with the checkpoint's sizes.

A checkpoint folder is what Hugging Face's `save_pretrained` writes: config.json, model.safetensors (or
pytorch_model.bin) and tokenizer.json. Nothing is ever downloaded: a name that is not a local folder is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deepwright.config.language import GPTConfig, LanguageModelConfig
from deepwright.errors import ConfigError

__all__ = ["SUPPORTED_MODEL_TYPES", "GPT2Checkpoint", "checkpoint_folder", "read_gpt2_checkpoint", "resolve_init_from"]

SUPPORTED_MODEL_TYPES = ("gpt2",)  # config.json's model_type: GPT-2, DistilGPT2 and other GPT-2-architecture models
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # read in this order of preference
# transformers' GPT2Config defaults, for the keys a config.json leaves out (as transformers reads it)
_GPT2_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_inner": None,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": True,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
}
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
# GPTConfig option → the config.json key it comes from (for the messages)
_SOURCE_KEYS = {
    "layers": "n_layer",
    "heads": "n_head",
    "dim": "n_embd",
    "bias": "GPT-2's biases",
    "tie_weights": "tie_word_embeddings",
    "activation": "activation_function",
    "norm_eps": "layer_norm_epsilon",
}


@dataclass(frozen=True)
class GPT2Checkpoint:
    """What a GPT-2 checkpoint folder holds: its files, vocabulary size, positions, and the `GPTConfig` values
    (layers, heads, dim, bias, tie_weights, activation, norm_eps) that reproduce its forward pass."""

    folder: Path
    weights: Path  # model.safetensors, or pytorch_model.bin when there is none
    tokenizer: Path
    vocabulary_size: int
    positions: int
    model: dict[str, Any]

    @property
    def config_path(self) -> Path:
        """The folder's config.json."""
        return self.folder / "config.json"


def checkpoint_folder(path: str | Path, key: str = "init_from") -> Path:
    """`path` as an existing local folder, or a `ConfigError` (naming the config `key`) saying that a checkpoint
    must be one: deepwright never downloads.

    >>> checkpoint_folder("gpt2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    deepwright.errors.ConfigError: init_from 'gpt2' is not a local folder: deepwright ... never downloads one; ...
    """
    folder = Path(path).expanduser()
    if folder.is_file():
        raise ConfigError(f"{key} {str(path)!r} is a file; give the folder that holds config.json and the weights")
    if not folder.is_dir():
        raise ConfigError(
            f"{key} {str(path)!r} is not a local folder: deepwright reads checkpoints from disk and never downloads "
            "one; save the checkpoint (config.json, model.safetensors, tokenizer.json) in a folder and give that "
            "folder's path"
        )
    return folder


def read_gpt2_checkpoint(path: str | Path) -> GPT2Checkpoint:
    """The GPT-2 checkpoint in the folder `path`, from its config.json; a `ConfigError` naming the file when a
    file is missing, config.json is not JSON, or the architecture is not GPT-2's."""
    folder = checkpoint_folder(path)
    settings = {**_GPT2_DEFAULTS, **_read_json(folder / "config.json")}
    config_path = folder / "config.json"
    model_type = settings.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        architectures = ", ".join(settings.get("architectures") or []) or "no architectures"
        raise ConfigError(
            f"{config_path}: model_type {model_type!r} ({architectures}) is not supported; init_from reads "
            f"GPT-2-family checkpoints (model_type {', '.join(SUPPORTED_MODEL_TYPES)}: GPT2LMHeadModel, GPT2Model, "
            "e.g. gpt2, distilgpt2)"
        )
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    tokenizer = folder / "tokenizer.json"
    missing = ([] if weights else [" or ".join(WEIGHT_FILES)]) + ([] if tokenizer.is_file() else ["tokenizer.json"])
    if missing:
        sharded = " (a sharded checkpoint is not read: save it as one file)" if _is_sharded(folder) else ""
        raise ConfigError(f"{folder}: no {' and no '.join(missing)}{sharded}; the checkpoint folder needs it")
    return GPT2Checkpoint(
        folder=folder,
        weights=weights,
        tokenizer=tokenizer,
        vocabulary_size=_positive(settings, "vocab_size", config_path),
        positions=_positive(settings, "n_positions", config_path),
        model=_model_options(settings, config_path),
    )


def resolve_init_from(config: LanguageModelConfig) -> LanguageModelConfig:
    """`config` with the model of its `init_from` checkpoint (`config` itself without one): layers, heads, dim,
    biases, tied output layer, GELU and norm epsilon from config.json, and `block_size` the checkpoint's positions
    unless set smaller. A `model` option the config sets to another value than the checkpoint's is a
    `ConfigError` naming both."""
    if config.init_from is None:
        return config
    checkpoint = read_gpt2_checkpoint(config.init_from)
    given = config.model.model_fields_set
    problems = [
        f"model.{key}: {getattr(config.model, key)!r} conflicts with {_SOURCE_KEYS[key]} {value!r} in "
        f"{checkpoint.config_path}; remove model.{key} (the checkpoint sets it)"
        for key, value in checkpoint.model.items()
        if key in given and getattr(config.model, key) != value
    ]
    block_size = config.model.block_size if "block_size" in given else checkpoint.positions
    if block_size > checkpoint.positions:
        problems.append(
            f"model.block_size: {block_size} exceeds n_positions {checkpoint.positions} in {checkpoint.config_path}; "
            f"use at most {checkpoint.positions} (a smaller block uses the first positions)"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    values = {**config.model.model_dump(), **checkpoint.model, "block_size": block_size}
    return config.model_copy(update={"model": GPTConfig.model_validate(values)})


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path.parent}: no config.json; the checkpoint folder needs it (as save_pretrained writes)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings")
    return settings


def _positive(settings: dict[str, Any], key: str, path: Path) -> int:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{path}: {key} must be a positive whole number, not {value!r}")
    return value


def _model_options(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    """The `GPTConfig` values of a GPT-2 config.json; a `ConfigError` for settings deepwright's GPT cannot follow."""
    activation = _ACTIVATIONS.get(settings["activation_function"])
    dim = _positive(settings, "n_embd", path)
    unsupported = {
        "activation_function": activation is None,
        "n_inner": settings["n_inner"] not in (None, 4 * dim),
        "scale_attn_weights": settings["scale_attn_weights"] is not True,
        "scale_attn_by_inverse_layer_idx": settings["scale_attn_by_inverse_layer_idx"] is not False,
    }
    wrong = [f"{key} {settings[key]!r}" for key, bad in unsupported.items() if bad]
    if wrong:
        raise ConfigError(
            f"{path}: {', '.join(wrong)} is not supported (deepwright's GPT has GELU {'/'.join(_ACTIVATIONS)} MLPs of "
            "4 × n_embd and attention scaled by 1/√head size)"
        )
    options = {
        "layers": _positive(settings, "n_layer", path),
        "heads": _positive(settings, "n_head", path),
        "dim": dim,
        "bias": True,
        "tie_weights": bool(settings["tie_word_embeddings"]),
        "activation": activation,
        "norm_eps": settings["layer_norm_epsilon"],
    }
    try:
        GPTConfig.model_validate(options)
    except ValidationError as error:
        problems = "; ".join(str(issue["msg"]) for issue in error.errors())
        raise ConfigError(f"{path}: {problems}") from None
    return options


def _is_sharded(folder: Path) -> bool:
    return any((folder / f"{name}.index.json").is_file() for name in WEIGHT_FILES)
