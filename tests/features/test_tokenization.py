"""Tokenizers: word, character and byte-level BPE, learned on training texts, stored as JSON, with fixed special ids."""

from __future__ import annotations

import numpy as np
import pytest

from deepwright.config import BpeTokenizerConfig, CharTokenizerConfig, WordTokenizerConfig, load_config
from deepwright.errors import ConfigError
from deepwright.features.tokenization import (
    PAD_ID,
    UNKNOWN_ID,
    decode,
    encode_corpus,
    encode_padded,
    tokenizer_from_json,
    train_tokenizer,
)

TEXTS = ["To be, or not to be: that is the question.", "Whether 'tis nobler in the mind", "naïve café 日本 🙂"]


def char(**options: object) -> CharTokenizerConfig:
    return CharTokenizerConfig(type="char", **options)


def bpe(**options: object) -> BpeTokenizerConfig:
    return BpeTokenizerConfig(type="bpe", **options)


@pytest.mark.parametrize("options", [char(), bpe(vocab_size=300)], ids=["char", "bpe"])
def test_char_and_bpe_give_back_the_exact_text(options: object) -> None:
    tokenizer = train_tokenizer(options, TEXTS)
    for text in [*TEXTS, "  spaces\n\nand\ttabs  "]:
        ids = encode_corpus(tokenizer, text, options.type)
        if options.type == "bpe" or all(character in "".join(TEXTS) for character in text):
            assert decode(tokenizer, ids.tolist()) == text


def test_special_ids_are_fixed_in_every_kind() -> None:
    for options in (WordTokenizerConfig(min_count=1), char(), bpe(vocab_size=300)):
        vocabulary = train_tokenizer(options, TEXTS).get_vocab()
        assert vocabulary["<pad>"] == PAD_ID
        assert vocabulary["<unk>"] == UNKNOWN_ID


def test_char_vocabulary_is_ordered_by_frequency_and_cut_by_size_and_count() -> None:
    tokenizer = train_tokenizer(char(), ["aaab"])
    assert tokenizer.get_vocab() == {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3}
    assert train_tokenizer(char(vocab_size=3), ["aaab"]).get_vocab_size() == 3
    assert "b" not in train_tokenizer(char(min_count=2), ["aaab"]).get_vocab()


def test_char_lowercase_and_unknown_characters() -> None:
    tokenizer = train_tokenizer(char(lowercase=True), ["Abc"])
    assert tokenizer.encode("ABCz").ids == [2, 3, 4, UNKNOWN_ID]


def test_fast_character_encoding_equals_the_tokenizers_own() -> None:
    """The vectorised lookup for long texts gives the ids `Tokenizer.encode` gives (normaliser and unknowns too)."""
    text = "HELLO İstanbul ß ẞ straße \n\t 😀 é" * 20
    for options in (char(), char(lowercase=True), char(vocab_size=8)):
        tokenizer = train_tokenizer(options, [text[:200]])
        assert encode_corpus(tokenizer, text, "char").tolist() == tokenizer.encode(text).ids
    empty = train_tokenizer(char(), [""])
    assert encode_corpus(empty, "ab", "char").tolist() == [UNKNOWN_ID, UNKNOWN_ID]


def test_long_bpe_corpora_are_encoded_in_pieces_cut_after_newlines(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepwright.features import tokenization

    text = "\n".join(TEXTS * 30)
    tokenizer = train_tokenizer(bpe(vocab_size=300), [text])
    whole = encode_corpus(tokenizer, text, "bpe")
    monkeypatch.setattr(tokenization, "_CHUNK_CHARACTERS", 50)
    assert len(tokenization._pieces(text)) > 10
    assert decode(tokenizer, encode_corpus(tokenizer, text, "bpe").tolist()) == text
    assert whole.dtype == np.int64


def test_bpe_learns_merges_and_never_needs_unknown() -> None:
    tokenizer = train_tokenizer(bpe(vocab_size=300, min_count=1), ["the cat the hat " * 20])
    assert tokenizer.get_vocab_size() <= 300
    assert len(tokenizer.encode("the cat").ids) < len("the cat")  # merges joined bytes
    assert UNKNOWN_ID not in tokenizer.encode("ŝ 日本 🙂").ids


def test_tokenizers_round_trip_through_json() -> None:
    for options in (WordTokenizerConfig(min_count=1), char(), bpe(vocab_size=300)):
        tokenizer = train_tokenizer(options, TEXTS)
        again = tokenizer_from_json(tokenizer.to_str())
        assert again.encode(TEXTS[0]).ids == tokenizer.encode(TEXTS[0]).ids


def test_padding_truncation_and_max_length() -> None:
    tokenizer = train_tokenizer(char(), ["abcdef"])
    longest = encode_padded(tokenizer, ["ab", "abcd"], max_length=3)
    assert longest.tolist() == [[2, 3, PAD_ID], [2, 3, 4]]
    left = encode_padded(tokenizer, ["abcd"], max_length=3, truncation="left")
    assert left.tolist() == [[3, 4, 5]]
    fixed = encode_padded(tokenizer, ["ab"], max_length=5, padding="max_length")
    assert fixed.tolist() == [[2, 3, PAD_ID, PAD_ID, PAD_ID]]


def test_unknown_tokenizer_type_is_a_config_error_naming_the_choices() -> None:
    config = {
        "input_features": [{"name": "review", "type": "text", "tokenizer": {"type": "sentencepiece"}}],
        "output_features": [{"name": "label", "type": "binary"}],
    }
    with pytest.raises(ConfigError, match=r"input_features\[0\]\.tokenizer\.type: unknown type 'sentencepiece'"):
        load_config(config)
    with pytest.raises(ConfigError, match="choices: word, char, bpe"):
        load_config({"model_type": "lm", "tokenizer": {"type": "wordpiece"}})


def test_bpe_vocabulary_must_hold_the_bytes() -> None:
    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_size"):
        load_config({"model_type": "lm", "tokenizer": {"type": "bpe", "vocab_size": 100}})
