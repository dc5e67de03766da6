"""The encoder → combiner → heads model ("ECD"): one encoder per input, one head per output.

It takes a dict of tensors keyed by input name and returns a dict of logits keyed by output name. Names are
kept in lists beside `nn.ModuleList`s (not in a `ModuleDict`) because column names may hold dots, which
module names may not; weight names are therefore `encoders.0…`, `heads.0…`, stable for a given config.
`ECD.from_options` assembles one from built encoders, the combiner's options and the outputs' head builders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from deepwright.config import CombinerConfig
from deepwright.models.blocks import initialize
from deepwright.registry import COMBINERS

__all__ = ["ECD", "EncodedInput", "HeadBuilder", "predict_logits"]

# An input's name, its encoder, and the width of the vector the encoder returns.
EncodedInput = tuple[str, nn.Module, int]
# An output's name, and what builds its head from the width of the combiner's vector.
HeadBuilder = tuple[str, Callable[[int], nn.Module]]


class ECD(nn.Module):
    """Encoders (one per input key) → combiner → heads (one per output key).

    >>> model = ECD(["x"], [nn.Identity()], lambda encoded: encoded[0], ["y"], [nn.Linear(3, 2)])
    >>> model({"x": torch.zeros(4, 3)})["y"].shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        input_names: list[str],
        encoders: list[nn.Module],
        combiner: nn.Module,
        output_names: list[str],
        heads: list[nn.Module],
    ) -> None:
        super().__init__()
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.encoders = nn.ModuleList(encoders)
        self.combiner = combiner
        self.heads = nn.ModuleList(heads)

    @classmethod
    def from_options(
        cls,
        inputs: Sequence[EncodedInput],
        combiner: CombinerConfig,
        outputs: Sequence[HeadBuilder],
        initializer: str = "default",
    ) -> ECD:
        """The model of these encoded inputs, the combiner `combiner` describes over their vectors, and the heads
        the outputs build on its vector; then every layer initialised with `initializer`.

        >>> from deepwright.config import ConcatCombinerConfig
        >>> head = ("y", lambda width: nn.Linear(width, 2))
        >>> model = ECD.from_options([("x", nn.Identity(), 3)], ConcatCombinerConfig(), [head])
        >>> model({"x": torch.zeros(4, 3)})["y"].shape
        torch.Size([4, 2])
        """
        joined = COMBINERS.get(combiner.type)(combiner, [width for _, _, width in inputs])
        heads = [build(joined.output_size) for _, build in outputs]
        model = cls(
            [name for name, _, _ in inputs],
            [encoder for _, encoder, _ in inputs],
            joined,
            [name for name, _ in outputs],
            heads,
        )
        initialize(model, initializer)
        return model

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoded = [encoder(inputs[name]) for name, encoder in zip(self.input_names, self.encoders)]
        hidden = self.combiner(encoded)  # (B, combiner output size)
        return {name: head(hidden) for name, head in zip(self.output_names, self.heads)}


@torch.inference_mode()
def predict_logits(model: nn.Module, inputs: dict, batch_size: int = 1024) -> dict:
    """Run `model` in evaluation mode over all rows of `inputs` (tensors, or lazy columns that return tensors
    when sliced), `batch_size` rows at a time on the model's device."""
    if model.training:
        model.eval()
    device = next(model.parameters()).device
    total = len(next(iter(inputs.values())))
    pieces: dict[str, list[torch.Tensor]] = {}
    for start in range(0, max(total, 1), batch_size):  # no rows still runs once, giving empty logits
        batch = {name: column[start : start + batch_size].to(device) for name, column in inputs.items()}
        for name, logits in model(batch).items():
            pieces.setdefault(name, []).append(logits.float())
    return {name: torch.cat(parts) if len(parts) > 1 else parts[0] for name, parts in pieces.items()}
