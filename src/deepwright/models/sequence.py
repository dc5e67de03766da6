"""Encoders over frame sequences (B, frames, features) that return the mean over time: `RecurrentEncoder` and
`FrameTransformer`, used by the audio feature over spectrogram frames.

Both are the general sequence blocks with the settings frames need: `Recurrent` (models/recurrent.py) with mean
reduction, and `TransformerEncoder` (models/transformer.py) with learned positions and mean pooling. Every clip
has the same number of frames, so no lengths are passed. They are the `rnn` and `transformer` builders of
`frames` inputs (`deepwright.models.encoders`).
"""

from __future__ import annotations

from deepwright.config import RecurrentEncoderConfig, TransformerEncoderConfig
from deepwright.models.encoders import EncoderInput
from deepwright.models.recurrent import Recurrent, recurrent_settings
from deepwright.models.transformer import TransformerEncoder, transformer_settings
from deepwright.registry import ENCODERS

__all__ = ["FrameTransformer", "RecurrentEncoder"]


class RecurrentEncoder(Recurrent):
    """A GRU or LSTM over (B, frames, input_size); the encoding is the mean of its outputs over time,
    (B, hidden_size · directions).

    >>> import torch
    >>> RecurrentEncoder(4, hidden_size=3)(torch.zeros(2, 5, 4)).shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        input_size: int,
        *,
        cell: str = "gru",
        hidden_size: int = 128,
        layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            input_size,
            cell=cell,
            hidden_size=hidden_size,
            layers=layers,
            bidirectional=bidirectional,
            dropout=dropout,
            reduction="mean",
        )

    @classmethod
    def from_options(cls, options: RecurrentEncoderConfig, shape: EncoderInput) -> RecurrentEncoder:
        """The recurrent encoder of `options` over frames of `shape.size` features."""
        return cls(shape.size, **recurrent_settings(options))


class FrameTransformer(TransformerEncoder):
    """A Transformer encoder over (B, frames, input_size) with learned positions for up to `max_frames` frames;
    the encoding is the mean over time, (B, size).

    >>> import torch
    >>> FrameTransformer(4, max_frames=5, size=8, heads=2, layers=1)(torch.zeros(2, 5, 4)).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        input_size: int,
        *,
        max_frames: int,
        size: int = 128,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            input_size,
            size=size,
            layers=layers,
            heads=heads,
            feedforward=feedforward,
            dropout=dropout,
            positions="learned",
            pooling="mean",
            max_length=max_frames,
        )

    @classmethod
    def from_options(cls, options: TransformerEncoderConfig, shape: EncoderInput) -> FrameTransformer:
        """The Transformer encoder of `options` over `shape.steps` frames of `shape.size` features."""
        return cls(shape.size, max_frames=shape.steps, **transformer_settings(options))


ENCODERS.register("frames/rnn")(RecurrentEncoder.from_options)
ENCODERS.register("frames/transformer")(FrameTransformer.from_options)
