"""Streaming text out of a language model: whole characters only, stop strings never written, notes, options."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from deepwright.config import LanguageModelConfig, load_config
from deepwright.deploy import generator as generator_module
from deepwright.deploy.generator import TextGenerator, _stop_prefix_length
from deepwright.features.tokenization import train_tokenizer
from deepwright.models.gpt import GPT


def make_generator(kind: str, texts: list[str]) -> TextGenerator:
    tokenizer_options = {"type": kind} if kind == "char" else {"type": "bpe", "vocab_size": 260}
    config: LanguageModelConfig = load_config(
        {"model_type": "lm", "tokenizer": tokenizer_options, "model": {"layers": 1, "heads": 1, "dim": 8}}
    )
    tokenizer = train_tokenizer(config.tokenizer, texts)
    return TextGenerator(config, tokenizer, GPT.from_options(config.model, tokenizer.get_vocab_size()))


def script(monkeypatch: pytest.MonkeyPatch, tokens: list[int]) -> None:
    """Make the model 'generate' exactly `tokens`, whatever it is asked."""

    def fixed(model: object, prompt: list[int], *, max_new_tokens: int, **options: object) -> Iterator[int]:
        yield from tokens[:max_new_tokens]

    monkeypatch.setattr(generator_module, "generate_tokens", fixed)


def test_characters_split_over_byte_tokens_are_written_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = make_generator("bpe", ["plain ascii text"])
    text = "a🙂b日"
    script(monkeypatch, generator.tokenizer.encode(text).ids)  # the emoji is 4 byte tokens, 日 is 3
    generation = generator.stream("x", max_new_tokens=50)
    pieces = list(generation)
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)
    assert "🙂" in pieces


def test_a_stop_string_ends_the_text_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = make_generator("char", ["abc\nxyz END"])
    script(monkeypatch, generator.tokenizer.encode("abc\nEND xyz").ids)
    generation = generator.stream("a", max_new_tokens=50, stop=["END", "zzz"])
    pieces = list(generation)
    assert "".join(pieces) == "abc\n" == generation.text
    assert generation.finish_reason == "stop"
    assert all("E" not in piece for piece in pieces)  # the start of the stop string was held back, never written


def test_held_back_text_is_written_when_it_is_not_a_stop_string(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = make_generator("char", ["abc ENx"])
    script(monkeypatch, generator.tokenizer.encode("ab ENx c EN").ids)
    generation = generator.stream("a", max_new_tokens=50, stop=["END"])
    assert "".join(generation) == "ab ENx c EN"
    assert generation.finish_reason == "length"


def test_stop_prefix_length() -> None:
    assert _stop_prefix_length("hello wor", ["world"]) == 3
    assert _stop_prefix_length("hello", ["world"]) == 0
    assert _stop_prefix_length("ab", ["b", "abc"]) == 2  # a whole one-character stop is found, not held


def test_a_generation_is_iterated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = make_generator("char", ["abc"])
    script(monkeypatch, [2, 3])
    generation = generator.stream("a")
    assert list(generation) == ["a", "b"]
    with pytest.raises(RuntimeError, match="iterated once"):
        list(generation)


def test_the_same_seed_writes_the_same_text() -> None:
    torch.manual_seed(0)
    generator = make_generator("char", ["the quick brown fox"])
    first = generator.generate("the", max_new_tokens=30, seed=5)
    assert generator.generate("the", max_new_tokens=30, seed=5) == first
    assert len(first) == 30
