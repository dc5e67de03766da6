"""`WindowForecaster`: windows of past steps → the next `horizon` values of each output.

A batch holds, per window, each input's encoded values at the `lookback` steps (a number block (B, L, P), or
category codes (B, L) that their embedding turns into (B, L, E)) and `HISTORY_KEY`: the outputs' own past,
normalised, (B, L, O). Each output is forecast relative to its last observed value (its *level*):

    relative_o = history_o − level_o                   (B, L) each: the past as changes from the last value
    encoded    = block([inputs…, relative…])           a recurrent network, Transformer or 1-D convolution
    forecast_o = level_o + head_o(combiner(encoded)) [+ linear_o(relative_o)]           (B, horizon)

so a level never seen in training (a trend, a record high) is no harder than any other, and persistence
(forecast = level) is where training starts from. The optional `linear_o` is an autoregressive term on the
output's own past (the "highway" of LSTNet), which a network of small data learns slowly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepwright.config import ForecastConfig
from deepwright.models.blocks import initialize
from deepwright.models.ecd import EncodedInput
from deepwright.models.encoders import EncoderInput, build_encoder
from deepwright.registry import COMBINERS

__all__ = ["HISTORY_KEY", "WindowForecaster"]

HISTORY_KEY = "__history__"


class WindowForecaster(nn.Module):
    """Step encoders → sequence block → combiner → one horizon head per output, around each output's level.

    >>> from deepwright.config import ConcatCombinerConfig
    >>> from deepwright.models.combiners import ConcatCombiner
    >>> from deepwright.models.recurrent import Recurrent
    >>> combiner = ConcatCombiner(ConcatCombinerConfig(), [4])
    >>> block = Recurrent(1, hidden_size=4)
    >>> model = WindowForecaster([], [], block, combiner, combiner.output_size, ["y"], lookback=3, horizon=2)
    >>> model({HISTORY_KEY: torch.zeros(5, 3, 1)})["y"].shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        input_names: list[str],
        step_encoders: list[nn.Module],
        block: nn.Module,
        combiner: nn.Module,
        combined_size: int,
        output_names: list[str],
        *,
        lookback: int,
        horizon: int,
        linear: bool = True,
    ) -> None:
        super().__init__()
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.step_encoders = nn.ModuleList(step_encoders)
        self.block = block
        self.combiner = combiner
        self.heads = nn.ModuleList(nn.Linear(combined_size, horizon) for _ in output_names)
        self.linear = nn.ModuleList(nn.Linear(lookback, horizon) for _ in output_names) if linear else None

    @classmethod
    def from_options(
        cls, options: ForecastConfig, inputs: Sequence[EncodedInput], output_names: list[str]
    ) -> WindowForecaster:
        """The forecaster of `options` (encoder, combiner, lookback, horizon, linear term, initialiser) over the
        step encoders of `inputs`, each returning its width of values per step, and the outputs' own past."""
        width = sum(size for _, _, size in inputs) + len(output_names)  # each output's own past too
        block = build_encoder(options.encoder, EncoderInput("steps", width, options.lookback))
        combiner = COMBINERS.get(options.combiner.type)(options.combiner, [block.output_size])
        model = cls(
            [name for name, _, _ in inputs],
            [encoder for _, encoder, _ in inputs],
            block,
            combiner,
            combiner.output_size,
            output_names,
            lookback=options.lookback,
            horizon=options.horizon,
            linear=options.linear,
        )
        initialize(model, options.initializer)
        return model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        history = batch[HISTORY_KEY]  # (B, L, O)
        level = history[:, -1, :]  # (B, O)
        relative = history - level.unsqueeze(1)  # (B, L, O)
        steps = [encoder(batch[name]) for name, encoder in zip(self.input_names, self.step_encoders)]
        sequence = torch.cat([*steps, relative], dim=2) if steps else relative  # (B, L, D)
        hidden = self.combiner([self.block(sequence)])  # (B, combined size)
        forecasts = {}
        for index, (name, head) in enumerate(zip(self.output_names, self.heads)):
            forecast = level[:, index : index + 1] + head(hidden)  # (B, H)
            if self.linear is not None:
                forecast = forecast + self.linear[index](relative[:, :, index])
            forecasts[name] = forecast
        return forecasts
