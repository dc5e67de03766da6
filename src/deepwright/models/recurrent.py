"""`Recurrent`: a recurrent network over sequences, reduced to one vector per sequence.

Input: `inputs` (B, T, D) floats (token ids are embedded by the feature's encoder first) and `lengths` (B,), the
valid steps of each row, padding at the end (None: every row is full). Rows of different lengths are packed, so
padding never changes a result. Output: (B, output_size).

`cell: rnn` is the seed document's recurrent layer, exactly:

    h_t = σ(W x_t + U h_{t-1} + b)        σ = tanh (or relu); h_0 = 0
    y_t = V h_t + c                        when `output_size` is set; otherwise y_t = h_t

with W = `weight_ih_l0`, U = `weight_hh_l0` and b = `bias_ih_l0 + bias_hh_l0` of the underlying `torch.nn.RNN`
(PyTorch keeps the bias as two vectors that are only ever added), and V, c the `projection` layer. `lstm` and
`gru` replace the cell with PyTorch's LSTM and GRU cells; `dropout` acts between stacked layers. The per-step
outputs y_t are then reduced to one vector: the last valid step (for a bidirectional network, the forward
direction's last step beside the backward direction's first), their mean, their maximum, or attention pooling
(a learned score per step, softmax over the valid steps, weighted sum).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepwright.config import RecurrentEncoderConfig, SequenceRnnEncoderConfig
from deepwright.models.checkpointing import run_block
from deepwright.models.encoders import EncoderInput
from deepwright.models.masking import masked_max, masked_mean, step_mask
from deepwright.registry import ENCODERS

__all__ = ["CELLS", "REDUCTIONS", "AttentionPooling", "Recurrent", "recurrent_settings"]

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
REDUCTIONS = ("last", "mean", "max", "attention")


class AttentionPooling(nn.Module):
    """A weighted mean of the steps: score_t = w · tanh(A y_t + a), weights = softmax of the valid steps' scores.

    >>> AttentionPooling(4)(torch.zeros(2, 3, 4), torch.tensor([[True, True, False]] * 2)).shape
    torch.Size([2, 4])
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(size, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        scores = self.score(torch.tanh(self.hidden(values))).squeeze(-1)  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)  # (B, T, 1)
        return (weights * values).sum(dim=1)  # (B, D)


class Recurrent(nn.Module):
    """A plain RNN, LSTM or GRU over (B, T, D) sequences of `lengths` valid steps → (B, output_size).

    >>> block = Recurrent(3, cell="gru", hidden_size=8, bidirectional=True, reduction="mean")
    >>> block(torch.zeros(2, 5, 3), torch.tensor([5, 2])).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        input_size: int,
        *,
        cell: str = "lstm",
        hidden_size: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        activation: str = "tanh",
        reduction: str = "last",
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
        options = {"nonlinearity": activation} if cell == "rnn" else {}
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,  # PyTorch's dropout acts between layers only
            **options,
        )
        self.cell = cell
        self.gradient_checkpointing = False  # recompute the recurrence in the backward pass (models/checkpointing)
        self.reduction = reduction
        states_size = hidden_size * (2 if bidirectional else 1)
        self.projection = nn.Linear(states_size, output_size) if output_size is not None else None  # V, c
        self.output_size = output_size if output_size is not None else states_size
        self.pooling = AttentionPooling(self.output_size) if reduction == "attention" else None

    @classmethod
    def from_options(cls, options: SequenceRnnEncoderConfig, shape: EncoderInput) -> Recurrent:
        """The recurrent block of `options` over steps of `shape.size` features."""
        return cls(
            shape.size,
            **recurrent_settings(options),
            activation=options.activation,
            reduction=options.reduction,
            output_size=options.output_dim,
        )

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) inputs with (B,) valid lengths (None: all T) → (B, output_size)."""
        if self.reduction == "last":
            _, last = self._run(inputs, lengths, need_steps=False)
            return last if self.projection is None else self.projection(last)
        outputs, mask = self.steps(inputs, lengths)
        if self.reduction == "mean":
            return masked_mean(outputs, mask)
        if self.reduction == "max":
            return masked_max(outputs, mask)
        return self.pooling(outputs, mask)

    def steps(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output y_t of every step, (B, T, output_size) with zeros at padding, and the (B, T) mask of valid
        steps (None when every row is full)."""
        outputs, _ = self._run(inputs, lengths, need_steps=True)
        if self.projection is not None:
            outputs = self.projection(outputs)
        mask = None if lengths is None or _all_full(lengths, inputs.shape[1]) else step_mask(lengths, inputs.shape[1])
        if mask is not None and self.projection is not None:
            outputs = outputs * mask.unsqueeze(-1)  # the projection's bias c is not an output of a padded step
        return outputs, mask

    def _run(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None, *, need_steps: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The last layer's per-step states (B, T, H·directions) when asked, and its final state per row,
        (B, H·directions): each direction's state after the last step it read."""
        num_steps = inputs.shape[1]
        if lengths is None or _all_full(lengths, num_steps):
            outputs, final = run_block(self, self.rnn, inputs)
        else:
            packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, final = run_block(self, self.rnn, packed)
            outputs = None
            if need_steps:
                outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=num_steps)
        hidden = final[0] if self.cell == "lstm" else final  # (layers · directions, B, H); LSTM also returns c
        # bidirectional: the forward direction after its last step beside the backward one after its first
        last = torch.cat([hidden[-2], hidden[-1]], dim=1) if self.rnn.bidirectional else hidden[-1]
        return outputs, last


def recurrent_settings(options: RecurrentEncoderConfig) -> dict[str, Any]:
    """The `Recurrent` arguments every rnn encoder config gives: cell, width, layers, directions and dropout."""
    return {
        "cell": options.cell,
        "hidden_size": options.dim,
        "layers": options.layers,
        "bidirectional": options.bidirectional,
        "dropout": options.dropout,
    }


def _all_full(lengths: torch.Tensor, num_steps: int) -> bool:
    """Whether every row uses all `num_steps` steps (then nothing needs packing or masking)."""
    return bool((lengths == num_steps).all())


ENCODERS.register("steps/rnn")(Recurrent.from_options)
