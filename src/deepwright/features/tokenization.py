"""Tokenizers learned on the training split with Hugging Face `tokenizers`, stored as JSON in the bundle.

Token id 0 is padding and 1 is "unknown" in every vocabulary. Nothing is downloaded: a tokenizer is always
trained here, on the training texts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from deepwright.config import WordTokenizerConfig

__all__ = ["PAD_ID", "UNKNOWN_ID", "encode_padded", "tokenizer_from_json", "train_tokenizer"]

PAD_TOKEN, UNKNOWN_TOKEN = "<pad>", "<unk>"
PAD_ID, UNKNOWN_ID = 0, 1


def train_tokenizer(options: WordTokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """A tokenizer of the configured kind, with its vocabulary learned from `texts`.

    >>> tokenizer = train_tokenizer(WordTokenizerConfig(min_count=1), ["Hello, world", "hello there"])
    >>> tokenizer.encode("Hello you").tokens
    ['hello', '<unk>']
    """
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNKNOWN_TOKEN))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if options.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=options.vocab_size, min_frequency=options.min_count, special_tokens=[PAD_TOKEN, UNKNOWN_TOKEN]
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def tokenizer_from_json(text: str) -> Tokenizer:
    """A tokenizer from the JSON string `Tokenizer.to_str()` wrote."""
    return Tokenizer.from_str(text)


def encode_padded(tokenizer: Tokenizer, texts: list[str], max_length: int, truncation: str = "right") -> np.ndarray:
    """Token ids of each text in a (N, L) int64 array, padded with `PAD_ID`; L is the longest text's length,
    at most `max_length` (longer texts lose tokens at the `truncation` end)."""
    encoded = [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]
    width = max(1, min(max_length, max((len(ids) for ids in encoded), default=1)))
    array = np.full((len(encoded), width), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(encoded):
        kept = ids[:width] if truncation == "right" else ids[-width:]
        array[row, : len(kept)] = kept
    return array
