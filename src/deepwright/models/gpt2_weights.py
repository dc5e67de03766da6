"""A GPT-2 checkpoint's weights (Hugging Face layout) copied onto deepwright's `GPT`, as nanoGPT's
`from_pretrained` does.

GPT-2 writes its linear layers as `Conv1D` modules whose weights are stored (in, out): they are transposed into
`nn.Linear`'s (out, in). The position table is cut to the model's block size. Every weight of the model must come
from the checkpoint with its exact shape, and every tensor of the checkpoint must go somewhere (GPT-2's causal
mask buffers and a tied output layer aside): otherwise a `ConfigError` names the key. Weights are read from
model.safetensors, or from pytorch_model.bin with `torch.load(weights_only=True)`, never as an arbitrary pickle.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepwright.config.checkpoint import read_gpt2_checkpoint
from deepwright.errors import ConfigError
from deepwright.models.gpt import GPT

__all__ = ["gpt2_key", "load_gpt2_weights", "read_weights"]

_TOP = {
    "token_embedding.weight": "wte.weight",
    "position_embedding.weight": "wpe.weight",
    "final_norm.weight": "ln_f.weight",
    "final_norm.bias": "ln_f.bias",
    "lm_head.weight": "lm_head.weight",
}
# a block's module → GPT-2's, and whether that module is a Conv1D (its weight stored transposed)
_BLOCK = {
    "attention_norm": ("ln_1", False),
    "attention.qkv": ("attn.c_attn", True),
    "attention.projection": ("attn.c_proj", True),
    "mlp_norm": ("ln_2", False),
    "mlp.expand": ("mlp.c_fc", True),
    "mlp.projection": ("mlp.c_proj", True),
}
_BUFFERS = (".attn.bias", ".attn.masked_bias")  # the causal masks older checkpoints saved with the weights


def gpt2_key(name: str) -> tuple[str, bool]:
    """The GPT-2 name of the `GPT` parameter `name` (without the `transformer.` prefix), and whether its weight
    is stored transposed.

    >>> gpt2_key("blocks.3.attention.qkv.weight")
    ('h.3.attn.c_attn.weight', True)
    >>> gpt2_key("final_norm.bias")
    ('ln_f.bias', False)
    """
    if name in _TOP:
        return _TOP[name], False
    _, layer, rest = name.split(".", 2)  # blocks.<i>.<module>.<weight|bias>
    module, leaf = rest.rsplit(".", 1)
    source, conv1d = _BLOCK[module]
    return f"h.{layer}.{source}.{leaf}", conv1d and leaf == "weight"


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model.safetensors or pytorch_model.bin file (names as saved); a `ConfigError` naming the
    file when it cannot be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            return load_file(str(path), device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{path}: not a readable checkpoint ({reason}); save the checkpoint again") from None
    except Exception as error:  # torch's UnpicklingError: the file holds more than tensors
        if not str(error).startswith("Weights only load failed"):
            raise
        raise ConfigError(
            f"{path}: holds objects other than tensors, which are never unpickled (torch.load with "
            "weights_only=True); save the checkpoint as model.safetensors"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ConfigError(f"{path}: expected a mapping of tensor names to tensors (a state dict)")
    return state


def load_gpt2_weights(model: GPT, folder: str | Path) -> None:
    """Copy the weights of the GPT-2 checkpoint in `folder` into `model` (built from that checkpoint's sizes, e.g.
    by `resolve_init_from`); a `ConfigError` naming the key for a missing, unexpected or wrongly shaped tensor."""
    path = read_gpt2_checkpoint(folder).weights
    source = {key.removeprefix("transformer."): value for key, value in read_weights(path).items()}
    tied = model.lm_head.weight is model.token_embedding.weight
    unused = {key for key in source if not key.endswith(_BUFFERS)} - ({"lm_head.weight"} if tied else set())
    state = {}
    for name, target in model.state_dict().items():
        key, transposed = ("wte.weight", False) if tied and name == "lm_head.weight" else gpt2_key(name)
        if key not in source:
            raise ConfigError(f"{path}: no tensor {key!r} (for {name}); the weights do not match config.json")
        tensor = source[key].t() if transposed else source[key]
        if name == "position_embedding.weight":
            tensor = tensor[: target.shape[0]]  # a block shorter than n_positions reads the first positions
        if tensor.shape != target.shape:
            stored = tuple(source[key].shape)
            raise ConfigError(
                f"{path}: tensor {key!r} has shape {stored}, but config.json's sizes need "
                f"{tuple(target.t().shape if transposed else target.shape)}; the weights do not match config.json"
            )
        state[name] = tensor.to(target.dtype)
        unused.discard(key)
    if unused:
        extra = ", ".join(repr(key) for key in sorted(unused)[:5])
        raise ConfigError(f"{path}: tensors {extra} have no place in a GPT-2 of config.json's sizes")
    model.load_state_dict(state)
