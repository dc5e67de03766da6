"""The `text` feature type: free text, tokenized by a tokenizer learned on the training split.

Input only: token ids (word, character or byte-level BPE tokens; padded at the end to the longest text, at most
`max_length`) → an encoder: `bag` (the mean of the token embeddings, the default), or token embeddings read by a
sequence block shared with the `sequence` feature: `rnn` (models/recurrent.py), `transformer` (models/transformer.py,
pre-norm, padding masked) or `conv1d` (a 1-D `ConvStack`). The tokenizer travels in the preprocessing state as
JSON. Missing cells are empty texts; an empty text reads as one unknown token, so that every row has a step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepwright.config import TextFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted
from deepwright.features.tokenization import UNKNOWN_ID, encode_padded, tokenizer_from_json, train_tokenizer
from deepwright.models.encoders import EncoderInput
from deepwright.registry import FEATURES

__all__ = ["TextFeature"]


@FEATURES.register("text")
class TextFeature(Feature):
    """A column of free text (see the module docstring)."""

    passthrough = False
    request_type = "text"

    def __init__(self, options: TextFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.tokenizer_: Any = None
        self.vocabulary_size_: int | None = None

    def fit(self, values: np.ndarray) -> None:
        texts = self._texts(values)
        if not any(text.strip() for text in texts):
            raise ValueProblem(None, "every training text is empty; fill the column or leave it out")
        self.tokenizer_ = train_tokenizer(self.options.tokenizer, texts)
        self.vocabulary_size_ = self.tokenizer_.get_vocab_size()

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "tokenizer_")
        texts, options = self._texts(values), self.options
        ids = encode_padded(self.tokenizer_, texts, options.max_length, options.truncation, options.padding)
        ids[ids[:, 0] == 0, 0] = UNKNOWN_ID  # an empty text: one unknown token
        return ids

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "tokenizer_")
        return {"tokenizer": self.tokenizer_.to_str(), "vocabulary_size": self.vocabulary_size_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tokenizer_ = tokenizer_from_json(state["tokenizer"])
        self.vocabulary_size_ = state["vocabulary_size"]

    def encoder_input(self) -> EncoderInput:
        check_is_fitted(self, "tokenizer_")
        options = self.options
        return EncoderInput("tokens", self.vocabulary_size_, options.max_length, embedding_dim=options.embedding_dim)

    def _texts(self, values: np.ndarray) -> list[str]:
        missing = missing_mask(values)
        if missing.any() and self.options.missing.strategy == "error":
            raise ValueProblem(int(np.flatnonzero(missing)[0]), "text is missing and missing.strategy is 'error'")
        return ["" if absent else str(value) for value, absent in zip(values, missing)]
