"""The tokenizers of text columns and language models: word, char and byte-level BPE."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from deepwright.config.base import Strict


class WordTokenizerConfig(Strict):
    """Words and punctuation marks as tokens, with a vocabulary learned on the training split."""

    type: Literal["word"] = "word"
    lowercase: bool = True
    vocab_size: int = Field(default=20_000, gt=2, description="the most frequent tokens kept, specials included")
    min_count: int = Field(default=2, ge=1, description="tokens seen fewer times in training are 'unknown'")


class CharTokenizerConfig(Strict):
    """Each character is a token; the vocabulary is the characters of the training split."""

    type: Literal["char"]
    lowercase: bool = False
    vocab_size: int | None = Field(
        default=None, gt=2, description="keep the most frequent characters, specials included; unset: all of them"
    )
    min_count: int = Field(default=1, ge=1, description="characters seen fewer times in training are 'unknown'")


class BpeTokenizerConfig(Strict):
    """Byte-level BPE (as GPT-2): merges of UTF-8 bytes learned on the training split; no text is ever 'unknown'."""

    type: Literal["bpe"]
    lowercase: bool = False
    vocab_size: int = Field(
        default=4096, gt=258, description="tokens: the 256 bytes, 2 specials, and the merges learned up to this size"
    )
    min_count: int = Field(default=2, ge=1, description="pairs seen fewer times in training are not merged")


TokenizerConfig = Annotated[WordTokenizerConfig | CharTokenizerConfig | BpeTokenizerConfig, Field(discriminator="type")]
