"""The convolutional blocks: `ConvStack` against the seed document's formula computed by hand, then the shapes,
layers and options of `ConvStack` and `ResNet`."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepwright.config import Conv1DEncoderConfig, ConvStackEncoderConfig, ResNetEncoderConfig
from deepwright.models.conv import ConvStack, ResNet
from deepwright.models.encoders import EncoderInput, build_encoder

# A 4×5 input and a 2×3 kernel whose entries are small multiples of 1/4, so every sum is exact in float32.
INPUT = [
    [1.0, -2.0, 0.5, 3.0, 0.0],
    [0.25, 1.5, -1.0, 2.0, -0.5],
    [-3.0, 0.0, 2.5, -1.5, 1.0],
    [2.0, -0.75, 1.0, 0.5, -2.0],
]
KERNEL_2X3 = [
    [0.5, -1.0, 0.25],
    [1.5, 0.0, -0.5],
]
KERNEL_3X3 = [
    [0.25, -0.5, 1.0],
    [0.0, 1.5, -0.25],
    [-1.0, 0.5, 0.75],
]
BIAS = -0.25

SEED_ACTIVATIONS = {
    "relu": lambda value: max(0.0, value),
    "sigmoid": lambda value: 1.0 / (1.0 + math.exp(-value)),
    "tanh": math.tanh,
}


def seed_convolution(x: list[list[float]], w: list[list[float]], b: float) -> list[list[float]]:
    """The seed's convolutional layer with plain loops and the seed's 1-based subscripts.

    The seed writes y_ij = Σ_k Σ_l x_{k−i+1, l−j+1} w_kl + b. Taken literally, the subscript k−i+1 is below 1
    for every i > 1 (and k = 1), so no output beyond the first row or column exists; the formula means the
    usual cross-correlation (what every deep-learning library calls convolution):

        y_ij = Σ_{k=1..K} Σ_{l=1..L} x_{i+k−1, j+l−1} w_kl + b,   i = 1..H−K+1, j = 1..W−L+1

    for an H×W input and a K×L kernel, with no padding and stride 1.
    """
    height, width = len(x), len(x[0])
    kernel_height, kernel_width = len(w), len(w[0])
    y = []
    for i in range(1, height - kernel_height + 2):
        row = []
        for j in range(1, width - kernel_width + 2):
            total = b
            for k in range(1, kernel_height + 1):
                for l in range(1, kernel_width + 1):  # noqa: E741 (the seed's name for the column index)
                    total += x[i + k - 1 - 1][j + l - 1 - 1] * w[k - 1][l - 1]  # 1-based → Python's 0-based
            row.append(total)
        y.append(row)
    return y


def assert_equal(actual: torch.Tensor, expected: list[list[float]]) -> None:
    """The tensor equals the hand-computed values up to float32 rounding."""
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=0, atol=1e-6)


def single_layer(kernel: list[list[float]], activation: str) -> ConvStack:
    """`ConvStack` reduced to the seed's layer: one channel in and out, no padding, no pooling, no norm; the
    kernel and bias set by hand."""
    size = len(kernel) if len(kernel) == len(kernel[0]) else (len(kernel), len(kernel[0]))
    stack = ConvStack(1, channels=[1], kernel_sizes=[size], paddings=[0], pools=[1], norm=None, activation=activation)
    conv = stack.layers[0]
    assert isinstance(conv, nn.Conv2d)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(kernel).view(1, 1, len(kernel), len(kernel[0])))
        conv.bias.fill_(BIAS)
    return stack


@pytest.mark.parametrize("kernel", [KERNEL_2X3, KERNEL_3X3], ids=["2x3", "3x3"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_a_convstack_layer_is_the_seed_formula(kernel: list[list[float]], activation: str) -> None:
    """One ConvStack convolution equals the seed's y_ij = Σ_k Σ_l x_{i+k−1, j+l−1} w_kl + b (the seed's
    x_{k−i+1, l−j+1} read as the usual cross-correlation; see `seed_convolution`), computed with loops on a 4×5
    input; the activation after it is the seed's σ applied to each y_ij. The 2×3 kernel is given to torch as
    (height, width); non-square shapes and non-symmetric values catch swapped or flipped indices."""
    stack = single_layer(kernel, activation)
    expected = seed_convolution(INPUT, kernel, BIAS)
    images = torch.tensor(INPUT).view(1, 1, 4, 5)

    with torch.no_grad():
        convolved = stack.layers[0](images)[0, 0]  # before the activation (and before any pooling)
        activated = stack.layers(images)[0, 0]  # conv → (no norm) → activation; pools=[1] adds no pooling
        pooled = stack(images)[0]

    assert convolved.shape == (4 - len(kernel) + 1, 5 - len(kernel[0]) + 1)
    assert_equal(convolved, expected)
    sigma = SEED_ACTIVATIONS[activation]
    expected_activated = [[sigma(value) for value in row] for row in expected]
    assert_equal(activated, expected_activated)
    flat = [value for row in expected_activated for value in row]
    assert pooled.tolist() == pytest.approx([sum(flat) / len(flat)], abs=1e-6)  # then global average pooling


def test_the_seed_formula_sums_over_every_input_channel() -> None:
    """With two input channels, y_ij = Σ_c Σ_k Σ_l x_c,{i+k−1, j+l−1} w_c,kl + b (one bias per output)."""
    stack = ConvStack(2, channels=[1], kernel_sizes=[3], paddings=[0], pools=[1], norm=None, activation="relu")
    second = [[value * 2 - 1 for value in row] for row in reversed(INPUT)]
    second_kernel = [*KERNEL_2X3[::-1], [1.0, 0.0, -1.0]]
    with torch.no_grad():
        stack.layers[0].weight.copy_(torch.tensor([KERNEL_3X3, second_kernel])[None])
        stack.layers[0].bias.fill_(BIAS)
        convolved = stack.layers[0](torch.tensor([INPUT, second])[None])[0, 0]
    first_part = seed_convolution(INPUT, KERNEL_3X3, BIAS)
    second_part = seed_convolution(second, second_kernel, 0.0)
    expected = [[a + b for a, b in zip(row_a, row_b)] for row_a, row_b in zip(first_part, second_part)]
    assert_equal(convolved, expected)


def test_the_seed_formula_taken_literally_has_no_second_row() -> None:
    """Why the test reads the seed's subscripts as cross-correlation: x_{k−i+1, ·} with i = 2 and k = 1 asks for
    row 0, which a 1-based image does not have."""
    i, k = 2, 1
    assert k - i + 1 < 1


# -- ConvStack ----------------------------------------------------------------------------------------------


def test_convstack_shapes() -> None:
    stack = ConvStack(1, channels=[4, 8])
    assert stack.output_size == 8
    assert stack(torch.zeros(3, 1, 28, 28)).shape == (3, 8)
    assert ConvStack(3, channels=[4])(torch.rand(2, 3, 9, 13)).shape == (2, 4)


def test_convstack_layers_in_order() -> None:
    stack = ConvStack(1, channels=[4, 8], activation="tanh", dropout=0.25)
    kinds = [type(layer) for layer in stack.layers]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.Tanh, nn.MaxPool2d, nn.Dropout2d] * 2
    first = stack.layers[0]
    assert first.in_channels == 1
    assert first.out_channels == 4
    assert first.kernel_size == (3, 3)
    assert first.bias is None  # batch norm's shift replaces the bias


def test_convstack_default_padding_keeps_the_size_and_pools_halve_it() -> None:
    stack = ConvStack(1, channels=[4, 4], pools=[1, 1], norm=None)
    assert stack.layers(torch.zeros(1, 1, 7, 9)).shape == (1, 4, 7, 9)
    stack = ConvStack(1, channels=[4, 4], norm=None)
    assert stack.layers(torch.zeros(1, 1, 8, 9)).shape == (1, 4, 2, 3)  # ceil mode: 9 → 5 → 3


def test_convstack_strides_pad_half_the_kernel() -> None:
    stack = ConvStack(1, channels=[4], kernel_sizes=[5], strides=[2], pools=[1], norm=None)
    conv = stack.layers[0]
    assert conv.stride == (2, 2)
    assert conv.padding == (2, 2)
    assert stack.layers(torch.zeros(1, 1, 8, 8)).shape == (1, 4, 4, 4)


def test_convstack_on_tiny_images_with_more_pools_than_pixels() -> None:
    stack = ConvStack(1, channels=[4, 4, 4, 4])
    assert stack(torch.rand(2, 1, 5, 3)).shape == (2, 4)


def test_convstack_group_norm() -> None:
    stack = ConvStack(1, channels=[4, 16], norm="group")
    norms = [layer for layer in stack.layers if isinstance(layer, nn.GroupNorm)]
    assert [(norm.num_groups, norm.num_channels) for norm in norms] == [(4, 4), (8, 16)]
    assert stack.layers[0].bias is not None
    assert stack(torch.rand(1, 1, 8, 8)).shape == (1, 16)  # group norm works on a single image


@pytest.mark.parametrize("channels", [12, 20])
def test_convstack_group_norm_with_any_channel_count(channels: int) -> None:
    assert ConvStack(1, channels=[channels], norm="group")(torch.rand(2, 1, 8, 8)).shape == (2, channels)


def test_convstack_one_dimensional() -> None:
    stack = ConvStack(6, channels=[4, 8], dims=1)
    assert isinstance(stack.layers[0], nn.Conv1d)
    assert stack(torch.rand(2, 6, 20)).shape == (2, 8)


def test_convstack_dropout_only_in_training() -> None:
    stack = ConvStack(1, channels=[4], dropout=0.5, norm=None).eval()
    images = torch.rand(2, 1, 8, 8)
    assert torch.equal(stack(images), stack(images))


def test_convstack_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    stack = ConvStack(3, channels=[4, 8], norm="batch")
    stack(torch.rand(4, 3, 8, 8)).sum().backward()
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in stack.parameters())


# -- ResNet -------------------------------------------------------------------------------------------------


def test_resnet_shapes_and_stages() -> None:
    net = ResNet(3, width=4, blocks=[1, 2])
    assert net.output_size == 8
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 8)
    assert net.stages(net.stem(torch.rand(2, 3, 16, 16))).shape == (2, 8, 8, 8)  # the second stage halves


def test_resnet_shortcuts_project_only_when_the_shape_changes() -> None:
    net = ResNet(1, width=4, blocks=[2, 1])
    first, second, third = net.stages
    assert isinstance(first.shortcut, nn.Identity)
    assert isinstance(second.shortcut, nn.Identity)
    assert isinstance(third.shortcut, nn.Sequential)
    assert third.conv1.stride == (2, 2)


def test_resnet_block_adds_its_input() -> None:
    """With the residual branch's last convolution zeroed, a same-shape block is ReLU(x) of its input."""
    net = ResNet(1, width=4, blocks=[1], norm=None)
    block = net.stages[0]
    with torch.no_grad():
        block.conv2.weight.zero_()
    inputs = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(inputs), torch.relu(inputs))


def test_resnet_one_dimensional_and_default_blocks() -> None:
    assert ResNet(2, width=4, dims=1)(torch.rand(2, 2, 16)).shape == (2, 16)
    assert ResNet(1, width=4).output_size == 16  # default blocks [2, 2, 2]


def test_resnet_trains_in_batch_norm_and_runs_on_one_image_in_eval() -> None:
    net = ResNet(1, width=4, blocks=[1, 1])
    net(torch.rand(4, 1, 8, 8)).sum().backward()
    assert all(parameter.grad is not None for parameter in net.parameters())
    assert net.eval()(torch.rand(1, 1, 8, 8)).shape == (1, 8)


def test_conv_encoders_are_dispatched_by_type() -> None:
    stack = build_encoder(ConvStackEncoderConfig(dims=[4, 6]), EncoderInput("grid", 3))
    assert isinstance(stack, ConvStack) and stack.output_size == 6
    assert isinstance(stack.layers[0], nn.Conv2d) and stack.layers[0].in_channels == 3
    resnet = build_encoder(ResNetEncoderConfig(type="resnet", dim=4, blocks=[1, 1]), EncoderInput("grid", 1))
    assert isinstance(resnet, ResNet) and resnet.output_size == 8
    along_time = build_encoder(Conv1DEncoderConfig(type="conv1d", dims=[5]), EncoderInput("grid", 7, dims=1))
    assert isinstance(along_time, ConvStack) and isinstance(along_time.layers[0], nn.Conv1d)
