"""Convolutional blocks: `ConvStack` (the seed's convolutional layer, stacked) and a small `ResNet`.

Both take images (B, C, H, W) and end in global average pooling, so they return one vector per image
(B, output_size) that a combiner can concatenate with other features. `dims=1` gives the same stacks over
sequences (B, C, T), for spectrogram frames or token embeddings. Their builders read a `grid` input
(`deepwright.models.encoders`) over its `dims` axes; `conv1d` is a ConvStack over a grid of one axis.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepwright.config import ConvStackEncoderConfig, ResNetEncoderConfig
from deepwright.models.blocks import ACTIVATIONS
from deepwright.models.encoders import EncoderInput
from deepwright.registry import ENCODERS

__all__ = ["ConvStack", "ResNet"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d}


def _norm(kind: str | None, channels: int, dims: int) -> nn.Module:
    if kind == "batch":
        return _BATCH_NORM[dims](channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)  # the group count must divide the channels
    return nn.Identity()


class ConvStack(nn.Module):
    """Layers of convolution → norm → activation → pool, then global average pooling to a vector.

    Each layer's output at (i, j) is Σ_k Σ_l x[i+k, j+l] · w[k, l] + b (over every input channel), the seed's
    convolutional layer, followed by the activation.

    >>> ConvStack(1, channels=[8, 16])(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        *,
        channels: list[int],
        kernel_sizes: list[int] | None = None,
        strides: list[int] | None = None,
        paddings: list[int | str] | None = None,
        pools: list[int] | None = None,
        activation: str = "relu",
        norm: str | None = "batch",
        dropout: float = 0.0,
        dims: int = 2,
    ) -> None:
        super().__init__()
        count = len(channels)
        kernel_sizes = kernel_sizes or [3] * count
        strides = strides or [1] * count
        paddings = paddings or ["same" if stride == 1 else kernel // 2 for kernel, stride in zip(kernel_sizes, strides)]
        pools = pools or [2] * count
        layers: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(channels):
            layers.append(
                _CONV[dims](
                    previous,
                    width,
                    kernel_sizes[index],
                    stride=strides[index],
                    padding=paddings[index],
                    bias=norm != "batch",  # batch norm's shift makes a bias redundant
                )
            )
            layers.append(_norm(norm, width, dims))
            layers.append(ACTIVATIONS[activation]())
            if pools[index] > 1:
                layers.append(_MAX_POOL[dims](pools[index], ceil_mode=True))
            if dropout > 0:
                layers.append(_DROPOUT[dims](dropout))
            previous = width
        self.layers = nn.Sequential(*layers)
        self.output_size = previous

    @classmethod
    def from_options(cls, options: ConvStackEncoderConfig, shape: EncoderInput) -> ConvStack:
        """The stack of `options` over `shape.size` input channels and `shape.dims` axes.

        >>> ConvStack.from_options(ConvStackEncoderConfig(dims=[4, 6]), EncoderInput("grid", 3)).output_size
        6
        """
        return cls(
            shape.size,
            channels=options.dims,
            kernel_sizes=options.kernel_sizes,
            strides=options.strides,
            paddings=options.paddings,
            pools=options.pools,
            activation=options.activation,
            norm=options.norm,
            dropout=options.dropout,
            dims=shape.dims,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.layers(images)  # (B, C_last, H', W') or (B, C_last, T')
        return features.flatten(2).mean(dim=2)  # global average pooling → (B, C_last)


class _BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (a projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str | None, dims: int) -> None:
        super().__init__()
        conv = _CONV[dims]
        self.conv1 = conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(norm, out_channels, dims)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, out_channels, dims)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv(in_channels, out_channels, 1, stride=stride, bias=False), _norm(norm, out_channels, dims)
            )
        self.activation = nn.ReLU()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.norm1(self.conv1(inputs)))
        return self.activation(self.norm2(self.conv2(hidden)) + self.shortcut(inputs))


class ResNet(nn.Module):
    """A small ResNet: a 3×3 stem, then stages of basic residual blocks (each stage after the first halves the
    resolution and doubles the width), then global average pooling.

    >>> ResNet(3, width=8, blocks=[1, 1])(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        *,
        width: int = 32,
        blocks: list[int] | None = None,
        norm: str | None = "batch",
        dims: int = 2,
    ) -> None:
        super().__init__()
        blocks = blocks or [2, 2, 2]
        self.stem = nn.Sequential(
            _CONV[dims](in_channels, width, 3, padding=1, bias=False), _norm(norm, width, dims), nn.ReLU()
        )
        stages: list[nn.Module] = []
        previous = width
        for stage, count in enumerate(blocks):
            channels = width * 2**stage
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                stages.append(_BasicBlock(previous, channels, stride, norm, dims))
                previous = channels
        self.stages = nn.Sequential(*stages)
        self.output_size = previous

    @classmethod
    def from_options(cls, options: ResNetEncoderConfig, shape: EncoderInput) -> ResNet:
        """The ResNet of `options` over `shape.size` input channels and `shape.dims` axes.

        >>> options = ResNetEncoderConfig(type="resnet", dim=4, blocks=[1])
        >>> ResNet.from_options(options, EncoderInput("grid", 1)).output_size
        4
        """
        return cls(shape.size, width=options.dim, blocks=options.blocks, norm=options.norm, dims=shape.dims)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(images))  # (B, C, H', W')
        return features.flatten(2).mean(dim=2)  # (B, C)


ENCODERS.register("grid/convstack")(ConvStack.from_options)
ENCODERS.register("grid/resnet")(ResNet.from_options)
ENCODERS.register("grid/conv1d")(ConvStack.from_options)  # a grid of one axis: channels over time
