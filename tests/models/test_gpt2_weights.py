"""GPT-2 checkpoints onto deepwright's GPT: the forward equals transformers' (safetensors and pytorch_model.bin,
a cropped position table, a bundle round trip), cached generation equals uncached, and every broken checkpoint
is a ConfigError naming the file or key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import deepwright as dp
from deepwright.config import load_config, resolve_init_from
from deepwright.deploy.generator import TextGenerator
from deepwright.errors import ConfigError
from deepwright.features.tokenization import gpt2_tokenizer
from deepwright.kinds.base import save_bundle
from deepwright.models.gpt import GPT
from deepwright.models.gpt2_weights import load_gpt2_weights
from deepwright.models.sampling import generate_tokens
from tests.gpt2 import SHAKESPEARE, VOCABULARY_SIZE, gpt2_logits, write_gpt2_tokenizer

TOLERANCE = 1e-5


def lm_config(folder: Path, **model: object) -> object:
    return load_config({"model_type": "lm", "init_from": str(folder), "model": model})


def loaded_gpt(folder: Path, **model: object) -> GPT:
    config = resolve_init_from(lm_config(folder, **model))
    gpt = GPT.from_options(config.model, VOCABULARY_SIZE)
    load_gpt2_weights(gpt, folder)
    return gpt.eval()


def copied(checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint, tmp_path / "checkpoint"))


@pytest.fixture(scope="module")
def ids(gpt2_checkpoint: Path) -> list[int]:
    return gpt2_tokenizer(gpt2_checkpoint).encode(SHAKESPEARE.read_text()[:400]).ids[:60]


@pytest.fixture(scope="module")
def reference(gpt2_checkpoint: Path, ids: list[int]) -> torch.Tensor:
    return gpt2_logits(gpt2_checkpoint, ids)


def test_the_model_sizes_come_from_config_json(gpt2_checkpoint: Path) -> None:
    model = resolve_init_from(lm_config(gpt2_checkpoint)).model
    assert (model.layers, model.heads, model.dim, model.block_size) == (2, 2, 32, 64)
    assert (model.bias, model.tie_weights, model.activation, model.norm_eps) == (True, True, "gelu_tanh", 1e-5)
    assert resolve_init_from(lm_config(gpt2_checkpoint, block_size=16, dropout=0.1)).model.block_size == 16


def test_the_forward_pass_equals_transformers(gpt2_checkpoint: Path, ids: list[int], reference: torch.Tensor) -> None:
    gpt = loaded_gpt(gpt2_checkpoint)
    assert gpt.lm_head.weight is gpt.token_embedding.weight
    with torch.no_grad():
        logits = gpt(torch.tensor([ids]))
    assert logits.shape == reference.shape
    assert torch.allclose(logits, reference, atol=TOLERANCE, rtol=0)


def test_a_shorter_block_reads_the_first_positions(
    gpt2_checkpoint: Path, ids: list[int], reference: torch.Tensor
) -> None:
    gpt = loaded_gpt(gpt2_checkpoint, block_size=16)
    assert gpt.position_embedding.weight.shape == (16, 32)
    with torch.no_grad():
        logits = gpt(torch.tensor([ids[:16]]))
    assert torch.allclose(logits, reference[:, :16], atol=TOLERANCE, rtol=0)


def test_pytorch_model_bin_in_the_original_layout(
    gpt2_checkpoint: Path, tmp_path: Path, ids: list[int], reference: torch.Tensor
) -> None:
    """The OpenAI layout: no `transformer.` prefix, causal-mask buffers saved, lm_head written out; read with
    weights_only=True."""
    folder = copied(gpt2_checkpoint, tmp_path)
    (folder / "model.safetensors").unlink()
    state = {
        key.removeprefix("transformer."): value
        for key, value in load_file(gpt2_checkpoint / "model.safetensors").items()
    }
    state["lm_head.weight"] = state["wte.weight"]
    state |= {f"h.{layer}.attn.bias": torch.ones(1, 1, 64, 64).tril() for layer in range(2)}
    torch.save(state, folder / "pytorch_model.bin")
    with torch.no_grad():
        logits = loaded_gpt(folder)(torch.tensor([ids]))
    assert torch.allclose(logits, reference, atol=TOLERANCE, rtol=0)


def test_the_bundle_keeps_the_forward_pass_without_the_checkpoint(
    gpt2_checkpoint: Path, tmp_path: Path, ids: list[int], reference: torch.Tensor
) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    config = resolve_init_from(lm_config(folder))
    generator = TextGenerator(config, gpt2_tokenizer(folder), loaded_gpt(folder))
    bundle = save_bundle(config, generator, tmp_path / "bundle")
    shutil.rmtree(folder)
    loaded = dp.load(bundle).predictor
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids]))
    assert torch.allclose(logits, reference, atol=TOLERANCE, rtol=0)
    assert loaded.tokenizer.to_str() == generator.tokenizer.to_str()
    assert loaded.banned_ids == ()  # the checkpoint's ids 0 and 1 are ordinary tokens


@pytest.mark.parametrize("options", [{"temperature": 0.0}, {"temperature": 1.0, "top_k": 20}])
def test_cached_generation_equals_uncached(gpt2_checkpoint: Path, ids: list[int], options: dict) -> None:
    gpt = loaded_gpt(gpt2_checkpoint, block_size=24)
    runs = [
        list(
            generate_tokens(
                gpt,
                ids[:5],
                max_new_tokens=40,  # past the block: the context restarts from its most recent half
                generator=torch.Generator().manual_seed(3),
                use_cache=use_cache,
                **options,
            )
        )
        for use_cache in (True, False)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 40


# -- broken checkpoints -------------------------------------------------------------------------------------


def test_a_hub_name_is_not_a_local_folder() -> None:
    with pytest.raises(ConfigError, match=r"'gpt2' is not a local folder.*never downloads"):
        resolve_init_from(lm_config(Path("gpt2")))


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        ("config.json", "no config.json"),
        ("model.safetensors", "no model.safetensors or pytorch_model.bin"),
        ("tokenizer.json", "no tokenizer.json"),
    ],
)
def test_a_missing_file_is_named(gpt2_checkpoint: Path, tmp_path: Path, removed: str, message: str) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    (folder / removed).unlink()
    with pytest.raises(ConfigError, match=message):
        resolve_init_from(lm_config(folder))


def test_a_corrupt_safetensors_file(gpt2_checkpoint: Path, tmp_path: Path) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"model\.safetensors: not a readable checkpoint"):
        loaded_gpt(folder)


def test_a_pickle_of_objects_is_never_loaded(gpt2_checkpoint: Path, tmp_path: Path) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    (folder / "model.safetensors").unlink()
    torch.save({"wte.weight": Path("x")}, folder / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="never unpickled"):
        loaded_gpt(folder)


def rewrite_weights(folder: Path, change: dict) -> None:
    state = load_file(folder / "model.safetensors")
    for key, value in change.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    save_file(state, folder / "model.safetensors")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"transformer.h.1.mlp.c_fc.weight": None}, r"no tensor 'h\.1\.mlp\.c_fc\.weight'"),
        (
            {"transformer.h.0.attn.c_attn.weight": torch.zeros(32, 64)},
            r"'h\.0\.attn\.c_attn\.weight' has shape \(32, 64\)",
        ),
        ({"transformer.h.2.ln_1.weight": torch.ones(32)}, r"tensors 'h\.2\.ln_1\.weight' have no place"),
    ],
)
def test_a_key_or_shape_mismatch_names_the_key(
    gpt2_checkpoint: Path, tmp_path: Path, change: dict, message: str
) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    rewrite_weights(folder, change)
    with pytest.raises(ConfigError, match=message):
        loaded_gpt(folder)


def test_a_tokenizer_of_another_vocabulary_size(gpt2_checkpoint: Path, tmp_path: Path) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    write_gpt2_tokenizer(folder, VOCABULARY_SIZE - 10)
    with pytest.raises(ConfigError, match=r"tokenizer\.json has 290 tokens but vocab_size in .*config\.json is 300"):
        gpt2_tokenizer(folder)


def edit_config_json(folder: Path, **settings: object) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model_type": "llama"}, "model_type 'llama' .* is not supported; init_from reads GPT-2-family"),
        ({"activation_function": "relu"}, "activation_function 'relu' is not supported"),
        ({"n_head": 3}, "multiple of heads 3"),
    ],
)
def test_an_architecture_the_gpt_cannot_follow(
    gpt2_checkpoint: Path, tmp_path: Path, settings: dict, message: str
) -> None:
    folder = copied(gpt2_checkpoint, tmp_path)
    edit_config_json(folder, **settings)
    with pytest.raises(ConfigError, match=message):
        resolve_init_from(lm_config(folder))


def test_model_options_that_contradict_the_checkpoint_are_named(gpt2_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.layers: 4 conflicts with n_layer 2 in .*config\.json") as caught:
        resolve_init_from(lm_config(gpt2_checkpoint, layers=4, dim=32, bias=False))
    assert "model.bias: False conflicts" in str(caught.value) and "model.dim" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"model\.block_size: 128 exceeds n_positions 64"):
        resolve_init_from(lm_config(gpt2_checkpoint, block_size=128))


def test_init_from_brings_its_tokenizer(gpt2_checkpoint: Path) -> None:
    assert lm_config(gpt2_checkpoint).tokenizer.type == "pretrained"
    with pytest.raises(ConfigError, match="the checkpoint brings its tokenizer"):
        load_config({"model_type": "lm", "init_from": str(gpt2_checkpoint), "tokenizer": {"type": "bpe"}})
    with pytest.raises(ConfigError, match="set init_from"):
        load_config({"model_type": "lm", "tokenizer": {"type": "pretrained"}})


def test_the_exact_gelu_would_not_pass(gpt2_checkpoint: Path, ids: list[int], reference: torch.Tensor) -> None:
    """The check above can tell GPT-2's tanh GELU and its 1e-5 epsilon from the exact GELU and another epsilon."""
    for change in ({"activation": "gelu"}, {"norm_eps": 1e-6}):
        config = resolve_init_from(lm_config(gpt2_checkpoint)).model.model_copy(update=change)
        gpt = GPT.from_options(config, VOCABULARY_SIZE)
        load_gpt2_weights(gpt, gpt2_checkpoint)
        with torch.no_grad():
            assert (gpt.eval()(torch.tensor([ids])) - reference).abs().max() > 10 * TOLERANCE, change
