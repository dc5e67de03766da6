"""The encoders of input columns: category embeddings, bags of tokens, convolution stacks, ResNets, the
recurrent and Transformer blocks over frames, steps and tokens, and pretrained text encoders."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from deepwright.config.base import Activation, Strict


class EmbeddingEncoderConfig(Strict):
    """A learned vector per category value."""

    renamed_keys: ClassVar[dict[str, str]] = {"size": "dim"}

    type: Literal["embedding"] = "embedding"
    dim: int | None = Field(default=None, gt=0, description="unset: min(50, round(1.6 · values^0.56))")
    dropout: float = Field(default=0.0, ge=0, lt=1)


class OneHotEncoderConfig(Strict):
    """A fixed one-hot vector per category value."""

    type: Literal["onehot"]


CategoryEncoderConfig = Annotated[EmbeddingEncoderConfig | OneHotEncoderConfig, Field(discriminator="type")]


class BagEncoderConfig(Strict):
    """The token embeddings pooled over the text (a bag of words: order is ignored)."""

    renamed_keys: ClassVar[dict[str, str]] = {"size": "dim"}

    type: Literal["bag"] = "bag"
    dim: int = Field(default=128, gt=0, description="embedding width")
    pooling: Literal["mean", "max", "mean_max"] = Field(
        default="mean_max", description="mean, element-wise max, or both side by side (twice the width)"
    )
    dropout: float = Field(default=0.0, ge=0, lt=1)


class ConvStackEncoderConfig(Strict):
    """Convolution → norm → activation → max-pool layers, then global average pooling."""

    renamed_keys: ClassVar[dict[str, str]] = {"channels": "dims"}

    type: Literal["convstack"] = "convstack"
    dims: list[Annotated[int, Field(gt=0)]] = Field(default=[32, 64, 128], min_length=1)
    kernel_sizes: list[Annotated[int, Field(gt=0)]] | None = Field(default=None, description="unset: 3 each")
    strides: list[Annotated[int, Field(gt=0)]] | None = Field(default=None, description="unset: 1 each")
    paddings: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, description="unset: keep the size")
    pools: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="unset: 2 each (1: none)")
    activation: Activation = "relu"
    norm: Literal["batch", "group"] | None = "batch"
    dropout: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _one_value_per_layer(self) -> ConvStackEncoderConfig:
        for key in ("kernel_sizes", "strides", "paddings", "pools"):
            values = getattr(self, key)
            if values is not None and len(values) != len(self.dims):
                raise ValueError(f"{key} has {len(values)} values for {len(self.dims)} layers in dims")
        return self


class ResNetEncoderConfig(Strict):
    """A small ResNet of basic residual blocks; each stage after the first halves the size and doubles the width."""

    renamed_keys: ClassVar[dict[str, str]] = {"width": "dim"}

    type: Literal["resnet"]
    dim: int = Field(default=32, gt=0, description="channels of the first stage")
    blocks: list[Annotated[int, Field(gt=0)]] = Field(default=[2, 2, 2], min_length=1, description="blocks per stage")
    norm: Literal["batch", "group"] | None = "batch"


ImageEncoderConfig = Annotated[ConvStackEncoderConfig | ResNetEncoderConfig, Field(discriminator="type")]


class Conv1DEncoderConfig(ConvStackEncoderConfig):
    """A ConvStack over spectrogram frames (1-D convolutions along time; the mel bins are the input channels)."""

    type: Literal["conv1d"]


class RecurrentEncoderConfig(Strict):
    """A GRU or LSTM over spectrogram frames; the encoding is the mean of its outputs over time."""

    renamed_keys: ClassVar[dict[str, str]] = {"hidden_size": "dim"}

    type: Literal["rnn"]
    cell: Literal["gru", "lstm"] = "gru"
    dim: int = Field(default=128, gt=0)
    layers: int = Field(default=2, gt=0)
    bidirectional: bool = True
    dropout: float = Field(default=0.0, ge=0, lt=1, description="between recurrent layers")


class TransformerEncoderConfig(Strict):
    """A small Transformer encoder over spectrogram frames (learned positions); the encoding is the mean over time."""

    renamed_keys: ClassVar[dict[str, str]] = {"size": "dim", "feedforward": "feedforward_dim"}

    type: Literal["transformer"]
    dim: int = Field(default=128, gt=0, description="model width; frames are projected to it")
    heads: int = Field(default=4, gt=0)
    layers: int = Field(default=2, gt=0)
    feedforward_dim: int = Field(default=256, gt=0, description="hidden size of each layer's feed-forward block")
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> TransformerEncoderConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        return self


AudioEncoderConfig = Annotated[
    ConvStackEncoderConfig
    | ResNetEncoderConfig
    | Conv1DEncoderConfig
    | RecurrentEncoderConfig
    | TransformerEncoderConfig,
    Field(discriminator="type"),
]


class SequenceRnnEncoderConfig(RecurrentEncoderConfig):
    """A recurrent network over the steps (models/recurrent.py): `cell: rnn` is the seed's h_t = σ(W x_t +
    U h_{t-1} + b), y_t = V h_t + c; lstm and gru are PyTorch's cells. Padded steps are packed away."""

    renamed_keys: ClassVar[dict[str, str]] = {"hidden_size": "dim", "output_size": "output_dim"}

    type: Literal["rnn"] = "rnn"
    cell: Literal["rnn", "gru", "lstm"] = "lstm"
    dim: int = Field(default=64, gt=0)
    layers: int = Field(default=1, gt=0)
    bidirectional: bool = False
    activation: Literal["tanh", "relu"] = Field(default="tanh", description="cell rnn only: σ")
    reduction: Literal["last", "mean", "max", "attention"] = Field(
        default="last", description="the outputs y_t → one vector: last step, mean, max, or attention pooling"
    )
    output_dim: int | None = Field(
        default=None, gt=0, description="y_t = V h_t + c of this size; unset: y_t = h_t (the layers after it are V)"
    )


class SequenceTransformerEncoderConfig(TransformerEncoderConfig):
    """Pre-norm Transformer encoder blocks over the steps (models/transformer.py); padded steps are masked."""

    type: Literal["transformer"] = "transformer"
    dim: int = Field(default=64, gt=0, description="model width; steps are projected to it")
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    pooling: Literal["mean", "cls"] = Field(default="mean", description="mean of the steps, or a learned [CLS] step")


SequenceEncoderConfig = Annotated[
    SequenceRnnEncoderConfig | SequenceTransformerEncoderConfig | Conv1DEncoderConfig, Field(discriminator="type")
]


class LoraOptions(Strict):
    """Low-rank adapters (LoRA, through `peft`) on a pretrained encoder: the pretrained weights stay frozen and
    only the adapters (and the layers after the encoder) learn."""

    r: int = Field(default=8, gt=0, description="rank of each adapter")
    alpha: float = Field(default=16.0, gt=0, description="scale: the adapter's update is multiplied by alpha / r")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="dropout on the adapter's input")
    targets: list[str] | None = Field(
        default=None, description="names of the linear layers to adapt; unset: peft's choice for the architecture"
    )


class PretrainedEncoderConfig(Strict):
    """A pretrained Hugging Face encoder (BERT, DistilBERT, RoBERTa, MiniLM, …) read from a local checkpoint
    folder (config.json, model.safetensors or pytorch_model.bin, tokenizer.json); never downloaded. The text is
    tokenized by the checkpoint's own tokenizer (the feature's `tokenizer` is not used)."""

    type: Literal["pretrained"]
    path: str = Field(min_length=1, description="the local checkpoint folder (not a hub name)")
    pooling: Literal["cls", "mean"] = Field(
        default="mean", description="the first token's last hidden state, or the mean over the real tokens"
    )
    trainable: bool | Annotated[int, Field(gt=0)] = Field(
        default=True, description="true: fine-tune every layer; false: frozen; N: only the last N layers learn"
    )
    lr: float = Field(
        default=5e-5, gt=0, description="learning rate of the pretrained weights (new layers: trainer.optimizer.lr)"
    )
    layer_decay: float = Field(
        default=1.0, gt=0, le=1, description="each layer learns at this multiple of the rate of the layer above"
    )
    lora: LoraOptions | None = Field(default=None, description="train low-rank adapters instead of the weights")

    @model_validator(mode="after")
    def _lora_trains_only_adapters(self) -> PretrainedEncoderConfig:
        if self.lora is not None and self.trainable is not True:
            raise ValueError("lora trains only the adapters; leave trainable unset (true) with lora")
        return self


TextEncoderConfig = Annotated[
    BagEncoderConfig
    | SequenceRnnEncoderConfig
    | SequenceTransformerEncoderConfig
    | Conv1DEncoderConfig
    | PretrainedEncoderConfig,
    Field(discriminator="type"),
]
