"""The text feature with a pretrained encoder: the checkpoint's tokenizer, the encoder's forward against
transformers' own, freezing, LoRA, per-layer learning rates, and the checkpoint folder's errors."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from deepwright.config import ConcatCombinerConfig, OptimizerConfig, TextFeatureConfig
from deepwright.errors import ConfigError, DeepwrightWarning
from deepwright.features.text import TextFeature
from deepwright.models.blocks import initialize
from deepwright.models.ecd import ECD
from deepwright.models.pretrained import PretrainedEncoder
from deepwright.training.optim import build_optimizer
from tests.pretrained import write_tokenizer

transformers = pytest.importorskip("transformers")

TEXTS = np.array(["the movie was great", "awful and dull", None, "a superb film , very lovely plot"], dtype=object)
Checkpoints = Callable[[str], Path]


def feature(path: Path, **encoder: object) -> TextFeature:
    """A fitted text input with a pretrained encoder from `path`."""
    options = TextFeatureConfig(
        name="review", type="text", encoder={"type": "pretrained", "path": str(path), **encoder}
    )
    text = TextFeature(options, "input")
    text.fit(TEXTS)
    return text


def reference(path: Path, ids: torch.Tensor, pad_id: int, pooling: str) -> torch.Tensor:
    """transformers' own model of the checkpoint on `ids`, pooled the same way."""
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    mask = (ids != pad_id).long()
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)


@pytest.mark.parametrize(("kind", "pooling"), [("bert", "cls"), ("distilbert", "mean"), ("roberta", "mean")])
def test_the_encoder_is_transformers_forward_before_and_after_a_state_round_trip(
    bert_checkpoints: Checkpoints, kind: str, pooling: str
) -> None:
    path = bert_checkpoints(kind)
    text = feature(path, pooling=pooling)
    ids = torch.from_numpy(text.transform(TEXTS))
    encoder = text.build_encoder().eval()
    assert isinstance(encoder, PretrainedEncoder) and encoder.output_size == text.width() == 32
    with torch.no_grad():
        ours, theirs = encoder(ids), reference(path, ids, text.pad_id_, pooling)
    assert (ours - theirs).abs().max() <= 1e-5
    assert text.state()["checkpoint"] == str(path.resolve())  # recorded, never read back
    loaded = TextFeature(text.options, "input")
    loaded.load_state(json.loads(json.dumps(text.state())))  # through JSON, as preprocessing.json
    assert np.array_equal(loaded.transform(TEXTS), ids.numpy())
    rebuilt = loaded.build_encoder().eval()  # from the state alone: the weights come from a bundle
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        assert (rebuilt(ids) - theirs).abs().max() <= 1e-5


def test_ids_carry_the_special_tokens_and_pad_with_the_models_pad_id(bert_checkpoints: Checkpoints) -> None:
    text = feature(bert_checkpoints("roberta"))
    ids = text.transform(TEXTS)
    assert text.pad_id_ == 1
    assert (ids[:, 0] == 0).all()  # <s>
    assert ids[2].tolist()[:3] == [0, 2, 1]  # a missing text: <s> </s>, then padding


def test_a_text_longer_than_max_length_is_cut_and_said_once(bert_checkpoints: Checkpoints) -> None:
    options = TextFeatureConfig(
        name="review", type="text", max_length=4, encoder={"type": "pretrained", "path": str(bert_checkpoints("bert"))}
    )
    text = TextFeature(options, "input")
    text.fit(TEXTS)
    with pytest.warns(DeepwrightWarning, match=r"3 of 4 texts are longer than max_length 4 tokens; their right"):
        ids = text.transform(TEXTS)
    assert ids.shape == (4, 4) and (ids[:, 3] != 0).sum() == 3  # [SEP] kept at the end of each cut text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text.transform(TEXTS)
    assert not caught


def trainable(encoder: torch.nn.Module) -> set[str]:
    return {name for name, parameter in encoder.named_parameters() if parameter.requires_grad}


def test_trainable_false_freezes_and_n_trains_the_last_n_layers(bert_checkpoints: Checkpoints) -> None:
    path = bert_checkpoints("bert")
    assert not trainable(feature(path, trainable=False).build_encoder())
    names = trainable(feature(path, trainable=1).build_encoder())
    assert names and all(".layer.1." in name for name in names)
    with pytest.raises(ConfigError, match="trainable is 3 but the model has 2 layers"):
        feature(path, trainable=3).build_encoder()


def test_pretrained_weights_learn_at_their_rate_decayed_by_layer(bert_checkpoints: Checkpoints) -> None:
    encoder = feature(bert_checkpoints("bert"), lr=1e-4, layer_decay=0.5).build_encoder()
    model = ECD.from_options(
        [("review", encoder, 32)], ConcatCombinerConfig(), [("y", lambda n: torch.nn.Linear(n, 2))]
    )
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-2))
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates == [1e-2, 1e-4 * 0.5**3, 1e-4 * 0.5**2, 1e-4 * 0.5, 1e-4]  # new; embeddings, layer 0, 1, pooler
    grouped = sum(len(group["params"]) for group in optimizer.param_groups)
    assert grouped == len(list(model.parameters()))
    head = set(map(id, model.heads.parameters())) | set(map(id, model.combiner.parameters()))
    assert head == set(map(id, optimizer.param_groups[0]["params"]))


def test_an_initializer_leaves_the_pretrained_weights(bert_checkpoints: Checkpoints) -> None:
    encoder = feature(bert_checkpoints("bert")).build_encoder()
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    initialize(encoder, "xavier_uniform")
    assert all(torch.equal(before[name], value) for name, value in encoder.state_dict().items())


def test_lora_trains_only_the_adapters(bert_checkpoints: Checkpoints) -> None:
    pytest.importorskip("peft")
    text = feature(bert_checkpoints("bert"), lora={"r": 4, "alpha": 8})
    encoder = text.build_encoder()
    names = trainable(encoder)
    assert names and all("lora_" in name for name in names)
    ids = torch.from_numpy(text.transform(TEXTS))
    encoder(ids).sum().backward()
    assert all(parameter.grad is not None for name, parameter in encoder.named_parameters() if name in names)
    rebuilt = TextFeature(text.options, "input")
    rebuilt.load_state(text.state())
    loaded = rebuilt.build_encoder().eval()
    loaded.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        assert torch.allclose(loaded(ids), encoder.eval()(ids), atol=1e-6)


def test_trainer_gradient_checkpointing_reaches_the_model_and_gives_the_same_gradients(
    bert_checkpoints: Checkpoints,
) -> None:
    from deepwright.models.checkpointing import use_gradient_checkpointing

    path = bert_checkpoints("bert")
    text = feature(path)
    ids = torch.from_numpy(text.transform(TEXTS))
    gradients = []
    for checkpointing in (False, True, False):
        encoder = feature(path).build_encoder().train()
        use_gradient_checkpointing(encoder, checkpointing)  # what training does with trainer.gradient_checkpointing
        assert encoder.gradient_checkpointing is checkpointing
        assert encoder.model.encoder.layer[0].gradient_checkpointing is checkpointing
        for module in encoder.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0  # no dropout: both passes are the same computation
        encoder(ids).sum().backward()
        gradients.append(encoder.model.embeddings.word_embeddings.weight.grad.clone())
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)
    assert torch.allclose(gradients[0], gradients[2], atol=1e-6)


def test_training_drops_the_columns_every_row_pads(bert_checkpoints: Checkpoints) -> None:
    text = feature(bert_checkpoints("bert"))
    ids = torch.from_numpy(text.transform(TEXTS[:2]))
    padded = torch.cat([ids, torch.zeros(2, 7, dtype=ids.dtype)], dim=1)
    encoder = text.build_encoder()
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    with torch.no_grad():
        assert torch.allclose(encoder.train()(padded), encoder.eval()(padded), atol=1e-6)


def test_a_pytorch_model_bin_is_read_with_weights_only(bert_checkpoints: Checkpoints, tmp_path: Path) -> None:
    folder = shutil.copytree(bert_checkpoints("bert"), tmp_path / "bin")
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    text = feature(folder)
    ids = torch.from_numpy(text.transform(TEXTS))
    with torch.no_grad():
        assert (
            text.build_encoder().eval()(ids) - reference(bert_checkpoints("bert"), ids, 0, "mean")
        ).abs().max() <= 1e-5


def broken(source: Path, folder: Path, damage: Callable[[Path], object]) -> Path:
    """A copy of the checkpoint `source` in `folder`, then `damage` done to it."""
    copy = shutil.copytree(source, folder)
    damage(copy)
    return copy


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "tokenizer.json").unlink(), "has no tokenizer.json; copy it there"),
        (lambda folder: (folder / "config.json").unlink(), "has no config.json"),
        (lambda folder: (folder / "model.safetensors").unlink(), "has no model.safetensors or pytorch_model.bin"),
        (
            lambda folder: (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json"),
            "is not a readable safetensors file",
        ),
        (lambda folder: write_tokenizer(folder, extra_words=40), "has 69 tokens but the model's vocab_size is 29"),
        (lambda folder: (folder / "config.json").write_text("{", encoding="utf-8"), "is not valid JSON"),
    ],
    ids=["no-tokenizer", "no-config", "no-weights", "corrupt-safetensors", "vocabulary", "bad-json"],
)
def test_a_broken_checkpoint_folder_is_a_config_error(
    bert_checkpoints: Checkpoints, tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    folder = broken(bert_checkpoints("bert"), tmp_path / "broken", damage)
    with pytest.raises(ConfigError, match=message):
        feature(folder)


def test_truncated_weights_are_a_config_error(bert_checkpoints: Checkpoints, tmp_path: Path) -> None:
    def cut(folder: Path) -> None:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])

    folder = broken(bert_checkpoints("bert"), tmp_path / "cut", cut)
    with pytest.raises(ConfigError, match="safetensors"):
        feature(folder).build_encoder()


def test_a_hub_name_is_not_a_checkpoint_folder() -> None:
    with pytest.raises(ConfigError, match=r"encoder\.path 'bert-base-uncased' is not a local folder: .* never down"):
        feature(Path("bert-base-uncased"))


def test_without_transformers_the_error_names_the_extra(
    bert_checkpoints: Checkpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    text = feature(bert_checkpoints("bert"))
    real = importlib.import_module

    def missing(name: str, *args: object) -> object:
        if name == "transformers":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ConfigError, match=r"pip install 'deepwright\[pretrained\]'"):
        text.build_encoder()


def test_a_tokenizer_beside_a_pretrained_encoder_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="remove tokenizer"):
        TextFeatureConfig(
            name="t", type="text", tokenizer={"type": "char"}, encoder={"type": "pretrained", "path": "x"}
        )
