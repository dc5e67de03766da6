"""The `text` feature type: free text, tokenized by a tokenizer learned on the training split, or by a pretrained
checkpoint's own tokenizer.

Input only: token ids (word, character or byte-level BPE tokens; padded at the end to the longest text, at most
`max_length`) → an encoder: `bag` (the mean of the token embeddings, the default), or token embeddings read by a
sequence block shared with the `sequence` feature: `rnn` (models/recurrent.py), `transformer` (models/transformer.py,
pre-norm, padding masked) or `conv1d` (a 1-D `ConvStack`). The tokenizer travels in the preprocessing state as
JSON. Missing cells are empty texts; an empty text reads as one unknown token, so that every row has a step.

With `encoder: {type: pretrained, path: DIR}` the text is tokenized by DIR's tokenizer.json, special tokens
included, and padded with the model's pad id; a text longer than `max_length` tokens is cut (said once, in a
`DeepwrightWarning`). The preprocessing state then carries the tokenizer JSON and the model's config.json, so
that a bundle builds its encoder (models/pretrained.py) with no hub and no checkpoint folder; the fine-tuned
weights are the bundle's own (with LoRA: the whole weights, base and adapters, unmerged). The checkpoint's path
is recorded in the state, for the record only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from deepwright.config import TextFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.errors import ConfigError, DeepwrightWarning
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted
from deepwright.features.tokenization import (
    UNKNOWN_ID,
    checkpoint_tokenizer,
    encode_checkpoint,
    encode_padded,
    tokenizer_from_json,
    train_tokenizer,
)
from deepwright.models.encoders import EncoderInput
from deepwright.models.pretrained import PretrainedEncoder, hidden_size, read_checkpoint
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
        self.model_config_: dict[str, Any] | None = None  # pretrained: the checkpoint's config.json
        self.checkpoint_: str | None = None  # pretrained: the checkpoint folder it was fitted on
        self.pad_id_ = 0
        self.weights_: Path | None = None  # pretrained, fitted (not loaded): the weights training starts from
        self._told_of_cuts = False

    @property
    def pretrained(self) -> bool:
        """Whether the encoder is a pretrained checkpoint's (which brings its tokenizer)."""
        return self.options.encoder.type == "pretrained"

    def fit(self, values: np.ndarray) -> None:
        texts = self._texts(values)
        if self.pretrained:
            self._fit_checkpoint()
            return
        if not any(text.strip() for text in texts):
            raise ValueProblem(None, "every training text is empty; fill the column or leave it out")
        self.tokenizer_ = train_tokenizer(self.options.tokenizer, texts)
        self.vocabulary_size_ = self.tokenizer_.get_vocab_size()

    def _fit_checkpoint(self) -> None:
        checkpoint = read_checkpoint(self.options.encoder.path)
        positions = checkpoint.config.get("max_position_embeddings")
        if isinstance(positions, int) and self.options.max_length > positions:
            raise ConfigError(
                f"input {self.name!r}: max_length {self.options.max_length} is more than the {positions} positions "
                "the pretrained model has; lower max_length"
            )
        state = {"tokenizer": checkpoint.tokenizer, "model_config": checkpoint.config}
        self.load_state({**state, "checkpoint": str(checkpoint.path.resolve())})
        self.weights_ = checkpoint.weights

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "tokenizer_")
        texts, options = self._texts(values), self.options
        if self.pretrained:
            ids, cut = encode_checkpoint(self.tokenizer_, texts, options.max_length, options.padding, self.pad_id_)
            if cut and not self._told_of_cuts:
                self._told_of_cuts = True
                warnings.warn(
                    f"input {self.name!r}: {cut} of {len(texts)} texts are longer than max_length "
                    f"{options.max_length} tokens; their {options.truncation} end is cut",
                    DeepwrightWarning,
                    stacklevel=2,
                )
            return ids
        ids = encode_padded(self.tokenizer_, texts, options.max_length, options.truncation, options.padding)
        ids[ids[:, 0] == 0, 0] = UNKNOWN_ID  # an empty text: one unknown token
        return ids

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "tokenizer_")
        if self.pretrained:
            return {
                "tokenizer": self.tokenizer_.to_str(),
                "model_config": self.model_config_,
                "checkpoint": self.checkpoint_,
            }
        return {"tokenizer": self.tokenizer_.to_str(), "vocabulary_size": self.vocabulary_size_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.weights_ = None  # a loaded state's weights come from its bundle or checkpoint
        if not self.pretrained:
            self.tokenizer_ = tokenizer_from_json(state["tokenizer"])
            self.vocabulary_size_ = state["vocabulary_size"]
            return
        options = self.options
        self.tokenizer_ = checkpoint_tokenizer(state["tokenizer"], options.max_length, options.truncation)
        self.model_config_ = state["model_config"]
        self.checkpoint_ = state["checkpoint"]  # where it came from, for the record: the bundle never reads it
        self.vocabulary_size_ = int(self.model_config_["vocab_size"])
        self.pad_id_ = _pad_id(self.model_config_, self.tokenizer_)

    def encoder_input(self) -> EncoderInput:
        check_is_fitted(self, "tokenizer_")
        options = self.options
        return EncoderInput("tokens", self.vocabulary_size_, options.max_length, embedding_dim=options.embedding_dim)

    def width(self) -> int:
        """The encoder's output size (a pretrained encoder's: its hidden size)."""
        if self.pretrained:
            check_is_fitted(self, "model_config_")
            return hidden_size(self.model_config_)
        return super().width()

    def build_encoder(self) -> Any:
        """The encoder `options.encoder` describes; a pretrained one starts from the checkpoint's weights when
        this feature was fitted on it (not when its state was loaded: a bundle loads its own weights)."""
        if self.pretrained:
            check_is_fitted(self, "model_config_")
            return PretrainedEncoder.from_options(self.options.encoder, self.model_config_, self.pad_id_, self.weights_)
        return super().build_encoder()

    def _texts(self, values: np.ndarray) -> list[str]:
        missing = missing_mask(values)
        if missing.any() and self.options.missing.strategy == "error":
            raise ValueProblem(int(np.flatnonzero(missing)[0]), "text is missing and missing.strategy is 'error'")
        return ["" if absent else str(value) for value, absent in zip(values, missing)]


def _pad_id(config: dict[str, Any], tokenizer: Any) -> int:
    """The id that pads a checkpoint's texts: its config's pad_token_id, else its tokenizer's pad token's."""
    if isinstance(config.get("pad_token_id"), int):
        return config["pad_token_id"]
    found = (tokenizer.token_to_id(token) for token in ("[PAD]", "<pad>"))
    return next((found_id for found_id in found if found_id is not None), 0)
