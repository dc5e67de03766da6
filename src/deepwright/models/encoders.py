"""Encoder dispatch: an encoder config and the input it reads → the module it describes.

Every encoder is built by the one builder registered in `ENCODERS` under `"<kind>/<type>"`: the kind of input
(`EncoderInput.kind`) and the encoder config's `type`. A builder sits beside its module (`Recurrent.from_options`
in models/recurrent.py, `ConvStack.from_options` in models/conv.py, …) and takes the encoder options and the
`EncoderInput`. The same `type` may mean a different module for a different input: `rnn` over padded `steps` is a
`Recurrent` reduced as configured, over audio `frames` a `RecurrentEncoder` that averages them.

>>> from deepwright.config import SequenceRnnEncoderConfig
>>> build_encoder(SequenceRnnEncoderConfig(dim=8), EncoderInput("steps", size=3, steps=10)).output_size
8
>>> encoder_width(SequenceRnnEncoderConfig(dim=8, bidirectional=True), EncoderInput("steps", size=3))
16
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from deepwright.registry import ENCODERS

__all__ = ["EncoderInput", "build_encoder", "encoder_width"]

InputKind = Literal["codes", "tokens", "steps", "grid", "frames"]


@dataclass(frozen=True)
class EncoderInput:
    """What an encoder reads, the batch axis left out:

    - `codes`: one integer below `size` per row (category values);
    - `tokens`: up to `steps` token ids below `size`, 0 padding at the end; the encoders that read embeddings
      embed each token into `embedding_dim` values;
    - `steps`: up to `steps` steps of `size` floats, padding at the end (each row's length is passed along);
    - `grid`: `size` channels over `dims` spatial axes (images; spectrograms read as images or as channels);
    - `frames`: `steps` steps of `size` floats, every one present (spectrogram frames).
    """

    kind: InputKind
    size: int
    steps: int | None = None
    dims: int = 2
    embedding_dim: int | None = None


def build_encoder(options: Any, shape: EncoderInput) -> nn.Module:
    """The encoder that `options` (an encoder config) describe for input `shape`; it has an `output_size`."""
    return ENCODERS.get(f"{shape.kind}/{options.type}")(options, shape)


def encoder_width(options: Any, shape: EncoderInput) -> int:
    """The `output_size` of `build_encoder(options, shape)`, found by building it on the meta device: no weights
    are allocated and the random number generators are left as they were."""
    builder = ENCODERS.get(f"{shape.kind}/{options.type}")
    with torch.device("meta"):
        return builder(options, shape).output_size
