"""The config of a language model (model_type lm): a corpus → a GPT that writes text, trained from scratch or
fine-tuned from a GPT-2-family checkpoint on disk (`init_from`). Defaults are nanoGPT's CPU configuration."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from deepwright.config.base import Strict, with_default_type
from deepwright.config.tokenizers import BpeTokenizerConfig, CharTokenizerConfig, WordTokenizerConfig
from deepwright.config.trainer import LanguageModelTrainerConfig


class CorpusConfig(Strict):
    """Where a language model's text comes from: a text file, a folder of text files, or a table's text column."""

    column: str | None = Field(default=None, description="for a table (CSV, Parquet…): the column holding the text")
    separator: str = Field(default="\n\n", description="what joins the files of a folder or the rows of a column")
    suffixes: list[str] = Field(default=[".txt"], min_length=1, description="for a folder: the files read")
    validation_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="the last share of the text is held out for validation (as nanoGPT)"
    )
    encoding_errors: Literal["strict", "replace"] = Field(
        default="strict",
        description="strict: bytes that are not UTF-8 are an error naming the file and byte offset; "
        "replace: they become U+FFFD",
    )


class GPTConfig(Strict):
    """The GPT decoder's size: pre-norm causal self-attention blocks with GELU MLPs."""

    layers: int = Field(default=4, gt=0)
    heads: int = Field(default=4, gt=0)
    dim: int = Field(default=128, gt=0, description="width of the token vectors")
    block_size: int = Field(default=64, gt=1, description="the longest context, in tokens")
    dropout: float = Field(default=0.0, ge=0, lt=1)
    bias: bool = Field(default=False, description="biases in the linear layers and layer norms")
    tie_weights: bool = Field(default=True, description="the output layer shares the token embedding's weights")
    activation: Literal["gelu", "gelu_tanh"] = Field(
        default="gelu", description="the MLP's GELU: exact, or the tanh approximation GPT-2 uses"
    )
    norm_eps: float = Field(default=1e-5, gt=0, description="the layer norms' epsilon")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> GPTConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        return self


class GenerationConfig(Strict):
    """Sampling defaults for `deepwright generate` and `Pipeline.generate` (each can be overridden per call)."""

    max_new_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.8, ge=0, description="0: always the most likely token")
    top_k: int | None = Field(default=200, ge=0, description="sample among the k most likely tokens only (0: all)")
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="sample among the most likely tokens whose probabilities reach p (1: all)"
    )
    stop: list[str] = Field(default=[], description="stop before any of these strings")


class PretrainedTokenizerConfig(Strict):
    """The tokenizer of the `init_from` checkpoint (its tokenizer.json, byte-level BPE for GPT-2), used as it is."""

    type: Literal["pretrained"]


LanguageModelTokenizerConfig = Annotated[
    WordTokenizerConfig | CharTokenizerConfig | BpeTokenizerConfig | PretrainedTokenizerConfig,
    Field(discriminator="type"),
]


class LanguageModelConfig(Strict):
    """A causal language model: a tokenizer learned on the corpus and a GPT trained to predict the next token; or,
    with `init_from`, a GPT-2-family checkpoint's tokenizer and weights, fine-tuned on the corpus."""

    model_type: Literal["lm"]
    name: str | None = Field(default=None, description="run name; unset: the corpus file's name")
    init_from: str | None = Field(
        default=None,
        min_length=1,
        description="a local folder holding a GPT-2-family checkpoint (config.json, model.safetensors or "
        "pytorch_model.bin, tokenizer.json) to fine-tune: model sizes and tokenizer come from it; never downloaded",
    )
    corpus: CorpusConfig = CorpusConfig()
    tokenizer: LanguageModelTokenizerConfig = CharTokenizerConfig(type="char")
    model: GPTConfig = GPTConfig()
    trainer: LanguageModelTrainerConfig = LanguageModelTrainerConfig()
    generation: GenerationConfig = GenerationConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_tokenizer_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("init_from") is not None and "tokenizer" not in data:
            return {**data, "tokenizer": {"type": "pretrained"}}
        return with_default_type(data, "tokenizer", "char")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_can_write(cls, tokenizer: Any) -> Any:
        if tokenizer.type == "word":
            raise ValueError("a word tokenizer drops spaces and cannot write text back; use type 'char' or 'bpe'")
        return tokenizer

    @model_validator(mode="after")
    def _checkpoint_brings_its_tokenizer(self) -> LanguageModelConfig:
        pretrained = self.tokenizer.type == "pretrained"
        if self.init_from is not None and not pretrained:
            raise ValueError(
                "init_from: the checkpoint brings its tokenizer (tokenizer.json); remove tokenizer "
                "(or set it to {type: pretrained})"
            )
        if self.init_from is None and pretrained:
            raise ValueError("tokenizer type 'pretrained' is the init_from checkpoint's tokenizer; set init_from")
        return self
