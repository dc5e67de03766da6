"""Tokenizers learned on the training split with Hugging Face `tokenizers`, stored as JSON in the bundle.

Three kinds, chosen by the config's `tokenizer.type`:

- `word`: words and punctuation marks (NFKC-normalised), for classifying text; spaces are not kept.
- `char`: each character is a token; the vocabulary is the training split's characters.
- `bpe`: byte-level BPE as in GPT-2: the 256 bytes plus merges learned on the training split, so no text is
  ever unknown and decoding gives back the exact text.

Token id 0 is padding and 1 is "unknown" in every vocabulary. Nothing is downloaded: a tokenizer is always
trained here, on the training texts, except a pretrained checkpoint's own (`encode_checkpoint`), read from its
folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from deepwright.config import BpeTokenizerConfig, CharTokenizerConfig, WordTokenizerConfig
from deepwright.config.checkpoint import read_gpt2_checkpoint
from deepwright.errors import ConfigError

__all__ = [
    "PAD_ID",
    "UNKNOWN_ID",
    "checkpoint_tokenizer",
    "decode",
    "encode_checkpoint",
    "encode_corpus",
    "encode_padded",
    "gpt2_tokenizer",
    "tokenizer_from_json",
    "train_tokenizer",
    "train_vocabulary",
]

PAD_TOKEN, UNKNOWN_TOKEN = "<pad>", "<unk>"
PAD_ID, UNKNOWN_ID = 0, 1
_SPECIAL_TOKENS = [PAD_TOKEN, UNKNOWN_TOKEN]
_CHUNK_CHARACTERS = 1 << 20  # a long corpus is encoded in pieces of about this many characters, cut after a newline

TokenizerOptions = WordTokenizerConfig | CharTokenizerConfig | BpeTokenizerConfig


def train_tokenizer(options: TokenizerOptions, texts: Iterable[str]) -> Tokenizer:
    """A tokenizer of the configured kind, with its vocabulary learned from `texts`.

    >>> tokenizer = train_tokenizer(WordTokenizerConfig(min_count=1), ["Hello, world", "hello there"])
    >>> tokenizer.encode("Hello you").tokens
    ['hello', '<unk>']
    >>> tokenizer = train_tokenizer(CharTokenizerConfig(type="char"), ["abba"])
    >>> tokenizer.encode("abc").ids
    [2, 3, 1]
    """
    return _TRAINERS[options.type](options, texts)


def _train_word(options: WordTokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNKNOWN_TOKEN))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if options.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=options.vocab_size, min_frequency=options.min_count, special_tokens=_SPECIAL_TOKENS
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def _train_char(options: CharTokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """Characters by falling frequency (ties by code point), those seen at least `min_count` times, at most
    `vocab_size` tokens with the specials; every other character is unknown."""
    normalizer = normalizers.Lowercase() if options.lowercase else None
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalizer.normalize_str(text) if normalizer else text)
    tokenizer = _counted_vocabulary(counts, options.min_count, options.vocab_size)
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")  # one piece per character
    tokenizer.decoder = decoders.Fuse()  # characters join with nothing between them
    return tokenizer


def _train_bpe(options: BpeTokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    if options.lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=options.vocab_size,
        min_frequency=options.min_count,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


_TRAINERS = {"word": _train_word, "char": _train_char, "bpe": _train_bpe}


def _counted_vocabulary(counts: Counter[str], min_count: int, vocab_size: int | None) -> Tokenizer:
    """A word-level tokenizer of the tokens in `counts` seen at least `min_count` times, by falling count (ties in
    order), at most `vocab_size` tokens with the specials; every other token is unknown."""
    ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
    if vocab_size is not None:
        ranked = ranked[: vocab_size - len(_SPECIAL_TOKENS)]
    vocabulary = {token: index for index, token in enumerate(_SPECIAL_TOKENS)}
    vocabulary.update({token: len(_SPECIAL_TOKENS) + index for index, (token, _) in enumerate(ranked)})
    return Tokenizer(models.WordLevel(vocabulary, unk_token=UNKNOWN_TOKEN))


def train_vocabulary(
    token_lists: Iterable[list[str]], *, vocab_size: int, min_count: int = 1, lowercase: bool = False
) -> Tokenizer:
    """A tokenizer for sequences already split into tokens (each token is kept whole, spaces included), whose
    vocabulary is the tokens of `token_lists` by falling count; encode with `pretokenized=True`.

    >>> tokenizer = train_vocabulary([["C4", "E4"], ["C4"]], vocab_size=10)
    >>> encode_padded(tokenizer, [["C4", "G4"]], 5, pretokenized=True).tolist()
    [[2, 1]]
    """
    normalizer = normalizers.Lowercase() if lowercase else None
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update([normalizer.normalize_str(token) for token in tokens] if normalizer else tokens)
    tokenizer = _counted_vocabulary(counts, min_count, vocab_size)
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    return tokenizer


def tokenizer_from_json(text: str) -> Tokenizer:
    """A tokenizer from the JSON string `Tokenizer.to_str()` wrote."""
    return Tokenizer.from_str(text)


def gpt2_tokenizer(folder: str | Path) -> Tokenizer:
    """The tokenizer.json of the GPT-2 checkpoint in `folder` (a language model's `init_from`), used with the
    checkpoint's own ids; a `ConfigError` naming the file when `tokenizers` cannot read it or its vocabulary size
    is not config.json's `vocab_size`."""
    checkpoint = read_gpt2_checkpoint(folder)
    try:
        tokenizer = Tokenizer.from_file(str(checkpoint.tokenizer))
    except Exception as error:  # `tokenizers` raises plain Exception for a file it cannot parse
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{checkpoint.tokenizer}: not a tokenizer file `tokenizers` can read ({reason})") from None
    size = tokenizer.get_vocab_size()
    if size != checkpoint.vocabulary_size:
        raise ConfigError(
            f"{checkpoint.tokenizer} has {size:,} tokens but vocab_size in {checkpoint.config_path} is "
            f"{checkpoint.vocabulary_size:,}; the tokenizer must be the checkpoint's own"
        )
    return tokenizer


def encode_padded(
    tokenizer: Tokenizer,
    texts: list[str] | list[list[str]],
    max_length: int,
    truncation: str = "right",
    padding: str = "longest",
    *,
    pretokenized: bool = False,
) -> np.ndarray:
    """Token ids of each text in a (N, L) int64 array, padded with `PAD_ID`. L is `max_length` with
    `padding='max_length'`, else the longest text's length, at most `max_length`; longer texts lose tokens at
    the `truncation` end. With `pretokenized`, each text is a list of tokens (see `train_vocabulary`).

    >>> tokenizer = train_tokenizer(CharTokenizerConfig(type="char"), ["abc"])
    >>> encode_padded(tokenizer, ["ab", "cab"], 2, truncation="left").tolist()
    [[2, 3], [2, 3]]
    """
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False, is_pretokenized=pretokenized)
    encoded = [encoding.ids for encoding in encodings]
    longest = max((len(ids) for ids in encoded), default=1)
    width = max_length if padding == "max_length" else max(1, min(max_length, longest))
    array = np.full((len(encoded), width), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(encoded):
        kept = ids[:width] if truncation == "right" else ids[-width:]
        array[row, : len(kept)] = kept
    return array


def checkpoint_tokenizer(text: str, max_length: int, truncation: str) -> Tokenizer:
    """A pretrained checkpoint's tokenizer from its tokenizer.json text, set to cut texts to `max_length`
    tokens (special tokens included) at the `truncation` end, and not to pad (`encode_checkpoint` pads)."""
    tokenizer = Tokenizer.from_str(text)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, direction=truncation)
    return tokenizer


def encode_checkpoint(
    tokenizer: Tokenizer, texts: list[str], max_length: int, padding: str, pad_id: int
) -> tuple[np.ndarray, int]:
    """Token ids of each text by a `checkpoint_tokenizer`, special tokens included ([CLS] … [SEP]), in a (N, L)
    int64 array padded with `pad_id` (L as for `encode_padded`), and how many texts the tokenizer cut.

    >>> from tokenizers import processors
    >>> vocabulary = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4}
    >>> tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    >>> tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> tokenizer.post_processor = processors.TemplateProcessing(
    ...     single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    ... )
    >>> tokenizer = checkpoint_tokenizer(tokenizer.to_str(), 4, "right")
    >>> ids, cut = encode_checkpoint(tokenizer, ["a", "a a a a"], 4, "longest", 0)
    >>> ids.tolist(), cut
    ([[2, 4, 3, 0], [2, 4, 4, 3]], 1)
    """
    encodings = tokenizer.encode_batch(texts, add_special_tokens=True)
    cut = sum(1 for encoding in encodings if encoding.overflowing)
    longest = max((len(encoding.ids) for encoding in encodings), default=1)
    width = max_length if padding == "max_length" else max(1, longest)
    array = np.full((len(encodings), width), pad_id, dtype=np.int64)
    for row, encoding in enumerate(encodings):
        array[row, : len(encoding.ids)] = encoding.ids
    return array, cut


def encode_corpus(tokenizer: Tokenizer, text: str, kind: str) -> np.ndarray:
    """The token ids of a whole corpus as one int64 array; `kind` is the tokenizer's config type.

    A character tokenizer is applied as one vectorised lookup (the same ids as `tokenizer.encode`, many times
    faster on a long text); other kinds encode pieces of about a million characters, cut after a newline, in
    parallel, so no token spans such a cut.

    >>> tokenizer = train_tokenizer(CharTokenizerConfig(type="char"), ["abba"])
    >>> encode_corpus(tokenizer, "abcab", "char").tolist()
    [2, 3, 1, 2, 3]
    """
    if kind == "char":
        return _encode_characters(tokenizer, text)
    pieces = _pieces(text)
    encodings = tokenizer.encode_batch(pieces, add_special_tokens=False)
    arrays = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _encode_characters(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Each character's id by a lookup in the sorted code points of the vocabulary (unknown: `UNKNOWN_ID`)."""
    if tokenizer.normalizer is not None:
        text = tokenizer.normalizer.normalize_str(text)
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocabulary = {token: index for token, index in tokenizer.get_vocab().items() if len(token) == 1}
    known = np.array(sorted(ord(token) for token in vocabulary), dtype=np.uint32)
    ids = np.array([vocabulary[chr(point)] for point in known], dtype=np.int64)
    if len(known) == 0:
        return np.full(len(points), UNKNOWN_ID, dtype=np.int64)
    positions = np.searchsorted(known, points).clip(max=len(known) - 1)
    found = known[positions] == points
    return np.where(found, ids[positions], UNKNOWN_ID)


def _pieces(text: str) -> list[str]:
    """`text` cut after a newline about every `_CHUNK_CHARACTERS` characters (never empty pieces)."""
    pieces, start = [], 0
    while start < len(text):
        end = text.find("\n", start + _CHUNK_CHARACTERS)
        end = len(text) if end < 0 else end + 1
        pieces.append(text[start:end])
        start = end
    return pieces


def decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    """The text of token ids: the exact text for `char` and `bpe` tokenizers (unknown characters as '<unk>').

    >>> tokenizer = train_tokenizer(CharTokenizerConfig(type="char"), ["ab\\n"])
    >>> decode(tokenizer, tokenizer.encode("ba\\nab").ids)
    'ba\\nab'
    """
    return tokenizer.decode(ids, skip_special_tokens=False)
