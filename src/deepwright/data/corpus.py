"""Reading a language model's corpus: a text file, a folder of text files, or a text column of a table.

Files are read as UTF-8. A byte that is not UTF-8 is a `DataError` naming the file and the byte's offset, unless
the config asks for replacement (U+FFFD). Files of a folder, or the rows of a column, are joined with the
configured separator; empty ones are skipped and counted. A corpus with no text at all is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepwright.config import CorpusConfig, read_gpt2_checkpoint
from deepwright.data.clean import missing_mask
from deepwright.data.infer import Inference
from deepwright.data.io import SUPPORTED_SUFFIXES, Table, read_table
from deepwright.errors import ConfigError, DataError

__all__ = ["Corpus", "decode_utf8", "infer_language_model_config", "read_corpus", "split_text"]

_UTF8_BOM = b"\xef\xbb\xbf"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class Corpus:
    """The whole text of a corpus, where it came from, and how many of its documents (files or rows) were read."""

    text: str
    source: str
    documents: int
    empty_documents: int = 0
    replaced_bytes: int = 0  # bytes that were not UTF-8, replaced by U+FFFD

    def summary(self) -> str:
        """One line for the log, e.g. '3 documents, 1,115,394 characters (1 empty skipped)'."""
        notes = []
        if self.empty_documents:
            notes.append(f"{self.empty_documents} empty skipped")
        if self.replaced_bytes:
            notes.append(f"{self.replaced_bytes} bytes that were not UTF-8 replaced")
        extra = f" ({'; '.join(notes)})" if notes else ""
        documents = f"{self.documents} document{'s' if self.documents != 1 else ''}"
        return f"{documents}, {len(self.text):,} characters{extra}"


def read_corpus(source: Any, options: CorpusConfig) -> Corpus:
    """Read the corpus at `source`: a text file, a folder of text files (those with `options.suffixes`, in sorted
    order, sub-folders included), a table file or a DataFrame/Arrow table (its `options.column`)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError("no such file or folder; check the path", source=str(path))
        if path.is_dir():
            return _read_folder(path, options)
        if _is_table_file(path):
            return _read_column(read_table(path), options)
        text, replaced = decode_utf8(_read_bytes(path), str(path), options.encoding_errors)
        return _checked(Corpus(text, str(path), documents=1, replaced_bytes=replaced))
    return _read_column(read_table(source), options)


def decode_utf8(data: bytes, source: str, errors: str = "strict") -> tuple[str, int]:
    """`data` decoded as UTF-8 (a leading byte-order mark dropped) and the number of bytes replaced by U+FFFD.

    With `errors='strict'`, the first byte that is not UTF-8 raises a `DataError` giving its offset.

    >>> decode_utf8("né".encode(), "a.txt")
    ('né', 0)
    >>> decode_utf8(b"n\\xe9!", "a.txt", "replace")
    ('n\\ufffd!', 1)
    """
    offset = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    body = data[offset:]
    try:
        return body.decode("utf-8"), 0
    except UnicodeDecodeError as error:
        if errors == "strict":
            position = offset + error.start
            raise DataError(
                f"byte {position:,} (0x{data[position]:02x}) is not valid UTF-8; convert the file to UTF-8, or set "
                "corpus.encoding_errors: replace to read such bytes as U+FFFD",
                source=source,
            ) from None
    # Each byte that is not UTF-8 becomes one lone surrogate (U+DC80…U+DCFF), then one U+FFFD.
    return _ESCAPED_BYTE.subn("\ufffd", body.decode("utf-8", errors="surrogateescape"))


def split_text(text: str, validation_fraction: float) -> tuple[str, str]:
    """The first (1 − fraction) of the characters for training and the rest for validation (nanoGPT's split).

    >>> split_text("abcdefghij", 0.2)
    ('abcdefgh', 'ij')
    """
    cut = int(len(text) * (1 - validation_fraction))
    return text[:cut], text[cut:]


def _read_folder(folder: Path, options: CorpusConfig) -> Corpus:
    suffixes = {suffix.lower() for suffix in options.suffixes}
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith(".")
    )
    if not files:
        raise DataError(
            f"the folder holds no {'/'.join(sorted(suffixes))} files; add text files or set corpus.suffixes",
            source=str(folder),
        )
    texts, empty, replaced = [], 0, 0
    for path in files:
        text, count = decode_utf8(_read_bytes(path), str(path), options.encoding_errors)
        replaced += count
        if text.strip():
            texts.append(text)
        else:
            empty += 1
    return _checked(Corpus(options.separator.join(texts), str(folder), len(files), empty, replaced))


def _read_column(table: Table, options: CorpusConfig) -> Corpus:
    if options.column is None:
        columns = ", ".join(repr(str(column)) for column in table.frame.columns[:20])
        raise ConfigError(
            f"corpus.column: {table.source} is a table; name its text column (it has {columns}), "
            "or give a text file or a folder of text files"
        )
    table.require_columns([options.column], "corpus")
    values = table.frame[options.column].to_numpy()
    present = ~missing_mask(values)
    texts = [str(value) for value, keep in zip(values, present) if keep]
    empty = int(len(values) - len(texts))
    return _checked(Corpus(options.separator.join(texts), table.source, len(values), empty))


def _checked(corpus: Corpus) -> Corpus:
    if not corpus.text.strip():
        raise DataError("the corpus is empty; a language model needs text to learn from", source=corpus.source)
    return corpus


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot be read ({error.strerror or error}); check the file", source=str(path)) from None


def _is_table_file(path: Path) -> bool:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst"):
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in SUPPORTED_SUFFIXES


def infer_language_model_config(source: Any, column: str | None = None, pretrained: str | None = None) -> Inference:
    """A language-model config for the corpus at `source` (a text file, a folder of text files, or a table and its
    text `column`): nanoGPT's CPU model (4 layers, 4 heads, width 128, block 64) on characters, 2,000 steps; or,
    with `pretrained` (a GPT-2 checkpoint folder), a fine-tune of that checkpoint (`init_from`) with its tokenizer:
    blocks of at most 256 tokens, 200 steps at a learning rate of 3e-5."""
    options = CorpusConfig(column=column)
    checkpoint = read_gpt2_checkpoint(pretrained) if pretrained is not None else None
    corpus = read_corpus(source, options)
    characters = len(set(corpus.text))
    config: dict[str, Any] = {
        "model_type": "lm",
        "corpus": {"validation_fraction": options.validation_fraction},
        "tokenizer": {"type": "char"},
        "model": {"layers": 4, "heads": 4, "dim": 128, "block_size": 64, "dropout": 0.0},
        "trainer": {"max_steps": 2000, "batch_size": 12, "eval_every": 250, "optimizer": {"type": "adamw", "lr": 1e-3}},
        "generation": {"max_new_tokens": 256, "temperature": 0.8, "top_k": 200},
    }
    if column is not None:
        config["corpus"]["column"] = column
    notes = [f"corpus: {corpus.summary()}; the last {options.validation_fraction:.0%} is held out for validation"]
    if checkpoint is None:
        notes += [
            f"{characters} distinct characters → a character tokenizer (for a large corpus, try type bpe)",
            "model: nanoGPT's CPU configuration (4 layers, 4 heads, width 128, block 64), 2,000 steps of batch 12",
        ]
        return Inference(config, notes)
    block_size = min(checkpoint.positions, 256)
    del config["tokenizer"]
    config = {"model_type": "lm", "init_from": str(pretrained), **config}
    config["model"] = {"block_size": block_size, "dropout": 0.0}
    config["trainer"] = {"max_steps": 200, "batch_size": 8, "eval_every": 50}
    config["trainer"]["optimizer"] = {"type": "adamw", "lr": 3e-5}
    sizes = checkpoint.model
    notes += [
        f"init_from {pretrained}: a GPT-2 of {sizes['layers']} layers, {sizes['heads']} heads, width {sizes['dim']} "
        f"and {checkpoint.vocabulary_size:,} tokens (its tokenizer.json); blocks of {block_size} of its "
        f"{checkpoint.positions} positions",
        "fine-tuning: 200 steps of batch 8 at a learning rate of 3e-5 (nanoGPT's fine-tuning rate)",
    ]
    return Inference(config, notes)
