"""The `sequence` feature type: a column of token sequences (events, notes, codes, words already split).

A cell is tokens separated by spaces (`"C4 E4 G4"`), a JSON list (`["C4", "E4"]`, `[60, 64]`) or a list. The
vocabulary is learned on the training split with the shared tokenization module (`<pad>` is id 0, `<unk>` id 1);
sequences become token ids padded at the end to the longest one (at most `max_length`, cut at the `truncation`
end). Input only: the encoder embeds the ids and runs a recurrent network, a Transformer encoder or a 1-D
convolution stack over them; padding never changes a result. A missing or empty sequence is an error naming the
row (or, with `missing: {strategy: drop_row}`, a missing one drops its row).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from deepwright.config import SequenceFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted, value_key
from deepwright.features.tokenization import encode_padded, tokenizer_from_json, train_vocabulary
from deepwright.models.encoders import EncoderInput
from deepwright.registry import FEATURES

__all__ = ["SequenceFeature", "list_cell"]


def list_cell(value: Any, delimiters: str = "") -> list[Any]:
    """The items of a list-like cell: a list, tuple or array as it is, a string holding a JSON list parsed, any
    other string split at the first of `delimiters` it contains (empty items kept), else on whitespace. Raises
    ValueError for broken JSON.

    >>> list_cell("C4  E4"), list_cell('["a b", 3]'), list_cell("1, ,3", delimiters=",;")
    (['C4', 'E4'], ['a b', 3], ['1', '', '3'])
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    text = str(value).strip()
    if text.startswith("["):
        parsed = json.loads(text)
        if not isinstance(parsed, list):
            raise ValueError("not a JSON list")
        return parsed
    for delimiter in delimiters:
        if delimiter in text:
            return [piece.strip() for piece in text.split(delimiter)]
    return text.split()


@FEATURES.register("sequence")
class SequenceFeature(Feature):
    """A column of token sequences (see the module docstring)."""

    passthrough = False

    def __init__(self, options: SequenceFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.tokenizer_: Any = None
        self.vocabulary_size_: int | None = None
        self.length_: int | None = None  # the longest training sequence, at most max_length

    def fit(self, values: np.ndarray) -> None:
        sequences = self._sequences(values)
        options = self.options
        self.tokenizer_ = train_vocabulary(
            sequences, vocab_size=options.vocab_size, min_count=options.min_count, lowercase=options.lowercase
        )
        self.vocabulary_size_ = self.tokenizer_.get_vocab_size()
        self.length_ = min(options.max_length, max(len(sequence) for sequence in sequences))

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "tokenizer_")
        sequences = self._sequences(values)
        return encode_padded(self.tokenizer_, sequences, self.length_, self.options.truncation, pretokenized=True)

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "tokenizer_")
        return {"tokenizer": self.tokenizer_.to_str(), "vocabulary_size": self.vocabulary_size_, "length": self.length_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tokenizer_ = tokenizer_from_json(state["tokenizer"])
        self.vocabulary_size_ = state["vocabulary_size"]
        self.length_ = state["length"]

    def encoder_input(self) -> EncoderInput:
        check_is_fitted(self, "tokenizer_")
        return EncoderInput("tokens", self.vocabulary_size_, self.length_, embedding_dim=self.options.embedding_dim)

    def _sequences(self, values: np.ndarray) -> list[list[str]]:
        """Every cell as a list of token strings; a missing, empty or unreadable cell raises `ValueProblem`."""
        missing = missing_mask(values)
        sequences = []
        for position, (value, absent) in enumerate(zip(values, missing)):
            if absent:
                raise ValueProblem(position, "sequence is missing; fill it, or set missing: {strategy: drop_row}")
            try:
                tokens = list_cell(value)
            except ValueError as error:
                raise ValueProblem(position, f"sequence {str(value)[:40]!r} is not a JSON list ({error})") from None
            if not tokens:
                raise ValueProblem(position, "sequence is empty; every sequence needs at least one token")
            if any(token is None for token in tokens):
                raise ValueProblem(
                    position, f"token {tokens.index(None) + 1} of the sequence is null; remove or fill it"
                )
            sequences.append([token if isinstance(token, str) else value_key(token) for token in tokens])
        return sequences
