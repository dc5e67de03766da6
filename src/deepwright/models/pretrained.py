"""Pretrained Hugging Face text encoders (BERT, DistilBERT, RoBERTa, MiniLM, …) from a local checkpoint folder.

A checkpoint folder holds `config.json`, `model.safetensors` (or `pytorch_model.bin`, read with
`weights_only=True`) and `tokenizer.json`; `read_checkpoint` checks it and reads the two JSON files. Nothing is
ever downloaded: the hub is switched off (`HF_HUB_OFFLINE=1`, `local_files_only=True`) and a name that is not a
local folder is a `ConfigError`.

`PretrainedEncoder` wraps `transformers.AutoModel`: token ids (B, T), padded with the model's pad id → the last
hidden states → one vector per text (`pooling`: the first token's, or the mean over the real tokens); in
training, the columns that are padding in every row of a batch are dropped first (the same result, less work). It is
built from the model's config alone (a bundle: the weights are loaded afterwards) or with the checkpoint's
weights (training). `trainable` freezes all of it or all but the last N layers, `lora` adds adapters through
`peft`, `learning_rates` gives the optimizer one rate per layer (layer-wise decay), and the
`gradient_checkpointing` property turns the model's own checkpointing on for `trainer.gradient_checkpointing`.
`transformers` and `peft` are imported only here, when an encoder is built: without them the error names the
extra to install.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepwright.config import PretrainedEncoderConfig, checkpoint_folder
from deepwright.config.checkpoint import WEIGHT_FILES
from deepwright.errors import ConfigError

__all__ = ["Checkpoint", "PretrainedEncoder", "hidden_size", "read_checkpoint", "require"]

EXTRA = "pip install 'deepwright[pretrained]'"


def require(module: str) -> Any:
    """The optional module `module` (transformers, peft), imported with the hub off; a `ConfigError` naming the
    extra to install when it is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"a pretrained encoder needs the {module} package; install it: {EXTRA}") from None


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint folder: its model config (config.json), tokenizer (tokenizer.json, as text) and
    weights file."""

    path: Path
    config: dict[str, Any]
    tokenizer: str
    weights: Path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint in the local folder `path`, checked: the folder exists, its files are there and readable,
    and the tokenizer's ids fit the model's vocabulary. Every problem is a `ConfigError` saying what to fix."""
    folder = checkpoint_folder(path, "encoder.path")
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    missing = [name for name in ("config.json", "tokenizer.json") if not (folder / name).is_file()]
    if weights is None:
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise ConfigError(f"the checkpoint folder {str(folder)!r} has no {', '.join(missing)}; copy it there")
    config = _read_json(folder / "config.json")
    tokenizer = (folder / "tokenizer.json").read_text(encoding="utf-8")
    _check_vocabulary(folder, config, tokenizer)
    if weights.suffix == ".safetensors":
        _check_safetensors(weights)
    return Checkpoint(folder, config, tokenizer, weights)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); copy the checkpoint again") from None
    if not isinstance(value, dict) or "model_type" not in value:
        raise ConfigError(f"{path} names no model_type; it is not a Hugging Face model config")
    return value


def _check_vocabulary(folder: Path, config: dict[str, Any], tokenizer_json: str) -> None:
    from tokenizers import Tokenizer

    try:
        size = Tokenizer.from_str(tokenizer_json).get_vocab_size()
    except Exception as error:  # the tokenizers library raises plain Exceptions on a bad file
        raise ConfigError(
            f"{folder / 'tokenizer.json'} is not a tokenizer the tokenizers library reads: {error}"
        ) from None
    vocab_size = config.get("vocab_size")
    if vocab_size is not None and size > vocab_size:
        raise ConfigError(
            f"{folder / 'tokenizer.json'} has {size} tokens but the model's vocab_size is {vocab_size}: the "
            "tokenizer does not belong to this model; use the checkpoint's own tokenizer.json"
        )


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except Exception as error:  # safetensors raises its own error type for a damaged header
        raise ConfigError(f"{path} is not a readable safetensors file ({error}); copy the checkpoint again") from None


class PretrainedEncoder(nn.Module):
    """A Hugging Face encoder over token ids (B, T) padded with `pad_id` → pooled last hidden states (B, D).

    `model` is a `transformers` model (or a `peft` model around one) whose output has `last_hidden_state`.
    """

    def __init__(
        self,
        model: nn.Module,
        pooling: str,
        pad_id: int,
        layers: nn.ModuleList,
        *,
        lr: float = 5e-5,
        layer_decay: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.pad_id = pad_id
        self.layers = [layers]  # a list, so the layers are not registered twice (they are the model's)
        self.lr = lr
        self.layer_decay = layer_decay
        self.output_size = int(model.config.hidden_size)
        self.checkpointing = False

    @property
    def gradient_checkpointing(self) -> bool:
        """Whether the model's layers recompute their activations in the backward pass (`trainer.
        gradient_checkpointing`, set through `deepwright.models.checkpointing.use_gradient_checkpointing`)."""
        return self.checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, enabled: bool) -> None:
        model, new = self.model, hasattr(self.model, "activation_checkpointing_enable")  # its name from transformers 5
        if enabled:
            enable = model.activation_checkpointing_enable if new else model.gradient_checkpointing_enable
            enable({"use_reentrant": False})  # the first argument of both: torch.utils.checkpoint's options
        elif self.checkpointing:
            (model.activation_checkpointing_disable if new else model.gradient_checkpointing_disable)()
        self.checkpointing = enabled

    @classmethod
    def from_options(
        cls, options: PretrainedEncoderConfig, config: dict[str, Any], pad_id: int, weights: Path | None
    ) -> PretrainedEncoder:
        """The encoder `config` (config.json's contents) describes, with the checkpoint's weights read from the
        folder of `weights` (None: left as initialised, for a bundle's weights to be loaded into), frozen and
        adapted as `options` say."""
        transformers = require("transformers")
        model_config = _model_config(transformers, config)
        try:
            with _quiet(transformers):
                model = _load_model(transformers, model_config, weights)
        except Exception as error:  # torch, safetensors and transformers each raise their own kinds
            raise ConfigError(f"cannot load the pretrained encoder from {options.path!r}: {error}") from None
        model.float()
        layers = _layer_list(model)
        _freeze(model, layers, options.trainable)
        if options.lora is not None:
            model = _with_adapters(model, options)
        return cls(model, options.pooling, pad_id, layers, lr=options.lr, layer_decay=options.layer_decay)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training:  # columns that are padding in every row cost work and change nothing: drop them
            ids = ids[:, : max(1, int((ids != self.pad_id).sum(dim=1).max()))]
        mask = ids != self.pad_id  # (B, T)
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, T, D)
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def learning_rates(self) -> list[tuple[list[nn.Parameter], float]]:
        """The trainable parameters grouped by learning rate: the top (anything above the last layer) at `lr`,
        layer i of L (from 1) at lr · layer_decay^(L + 1 − i), the embeddings at lr · layer_decay^(L + 1)."""
        lr, layer_decay = self.lr, self.layer_decay
        (layers,) = self.layers
        count = len(layers)
        depth = {id(parameter): index + 1 for index, layer in enumerate(layers) for parameter in layer.parameters()}
        groups: dict[int, list[nn.Parameter]] = {}
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                level = depth.get(id(parameter), 0 if "embeddings" in name else count + 1)
                groups.setdefault(level, []).append(parameter)
        return [(groups[level], lr * layer_decay ** (count + 1 - level)) for level in sorted(groups)]


def _load_model(transformers: Any, config: Any, weights: Path | None) -> nn.Module:
    """The model of `config`, with the weights of the file `weights` (None: as initialised)."""
    if weights is None:
        return transformers.AutoModel.from_config(config)
    if weights.suffix == ".safetensors":
        return transformers.AutoModel.from_pretrained(weights.parent, config=config, local_files_only=True)
    state = torch.load(weights, weights_only=True, map_location="cpu")  # tensors only: never a pickle's code
    model_class = transformers.MODEL_MAPPING[type(config)]
    return model_class.from_pretrained(None, config=config, state_dict=state)


@contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers without its progress bars and notes (such as the checkpoint's unused head weights)."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def hidden_size(config: dict[str, Any]) -> int:
    """The width of the vectors the encoder of `config` (config.json's contents) returns."""
    return int(_model_config(require("transformers"), config).hidden_size)


def _model_config(transformers: Any, config: dict[str, Any]) -> Any:
    """The `transformers` config object of config.json's contents."""
    mapping = transformers.models.auto.configuration_auto.CONFIG_MAPPING
    model_type = config["model_type"]
    if model_type not in mapping:
        raise ConfigError(f"model_type {model_type!r} of the checkpoint is not one this transformers version knows")
    return mapping[model_type].from_dict(config)


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The model's stack of Transformer layers: its first `ModuleList` of `num_hidden_layers` blocks."""
    count = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ConfigError(f"cannot find the {count} layers of the {model.config.model_type} model; use trainable: true")


def _freeze(model: nn.Module, layers: nn.ModuleList, trainable: bool | int) -> None:
    """Freeze all of `model` (trainable false), nothing (true), or all but the last N layers (N)."""
    if trainable is True:
        return
    model.requires_grad_(False)
    if trainable is False:
        return
    if trainable > len(layers):
        raise ConfigError(f"encoder.trainable is {trainable} but the model has {len(layers)} layers; lower it")
    for layer in layers[len(layers) - trainable :]:
        layer.requires_grad_(True)


def _with_adapters(model: nn.Module, options: PretrainedEncoderConfig) -> nn.Module:
    """`model` wrapped by `peft` with LoRA adapters; only the adapters are trainable."""
    peft = require("peft")
    lora = options.lora
    settings = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.targets)
    try:
        with warnings.catch_warnings():  # peft asks transformers 5 for a property it has renamed
            warnings.simplefilter("ignore", FutureWarning)
            return peft.get_peft_model(model, settings)
    except ValueError as error:
        raise ConfigError(f"encoder.lora: {error}; name the layers to adapt in lora.targets") from None
