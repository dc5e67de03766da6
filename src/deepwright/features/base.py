"""The contract every feature type fulfils, and the helpers feature modules share.

A feature type is one module in `features/`, registered in `FEATURES` by its config `type`. Built with its
config options and a role (`"input"` or `"output"`), it

- learns its preprocessing state from the training column (`fit`) and turns raw values into arrays
  (`transform`); the state round-trips through JSON (`state` / `load_state`);
- as an input, is either *passthrough* (its transformed matrix joins the one shared numeric block) or builds
  an encoder module that maps its array to a fixed-size vector;
- as an output, builds its head, computes its loss and metrics, and turns logits into rows (`postprocess`);
- as a served input, declares `request_type`, the JSON value a request gives for it ("number", "label", "text"
  or "media": see `deepwright.deploy.schema`), and may offer `request_hints()` → {"example", "choices", …} for
  the API documentation and the web page's form.

Feature code never knows where values came from: a bad value raises `ValueProblem(position, message)`, and
the caller, which knows the file and row numbers, turns it into a `DataError` naming file, row and column.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from deepwright.errors import NotFittedError

__all__ = ["Feature", "Role", "ValueProblem", "check_is_fitted", "plain", "value_key", "value_keys"]

Role = Literal["input", "output"]
_WHOLE_NUMBER_WITH_ZEROS = re.compile(r"-?\d+\.0+")


class ValueProblem(Exception):
    """A raw value a preprocessor cannot use, at `position` in the array it was given (None: the whole column)."""

    def __init__(self, position: int | None, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


class Feature(Protocol):
    """What the rest of deepwright needs from a feature type (see the module docstring)."""

    name: str
    role: Role
    passthrough: bool

    def fit(self, values: np.ndarray) -> None:
        """Learn preprocessing state from the training split's raw values."""

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Raw values → the array the encoder (input) or the loss (output) takes."""

    def state(self) -> dict[str, Any]:
        """The learned state as JSON-able data."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""

    def width(self) -> int:
        """Input, passthrough: columns of the transformed matrix. Otherwise: the encoder's output size."""

    def build_encoder(self) -> Any:
        """Input, not passthrough: the `torch.nn.Module` that encodes this feature's array."""

    def build_head(self, input_size: int) -> Any:
        """Output: the `torch.nn.Module` from the combiner's vector to this output's logits."""

    def loss(self, logits: Any, target: Any) -> Any:
        """Output: the scalar loss tensor for a batch."""

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        """Output: metrics of logits against transformed targets, in the data's own units."""

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        """Output: logits → result columns (label, probabilities or value), named after the feature."""


def check_is_fitted(feature: Any, attribute: str) -> None:
    """Raise `NotFittedError` when `feature` has not learned `attribute` yet, saying what to call first."""
    if getattr(feature, attribute) is None:
        raise NotFittedError(
            f"{type(feature).__name__} {feature.name!r} has no fitted state; call fit(values) on the training "
            "column first, or load_state(state)"
        )


def value_key(value: Any) -> str:
    """The string a raw value is known by, so that 3, 3.0 and '3', or True and 'true', are the same value.

    >>> [value_key(v) for v in (3, 3.0, " 3", "3.0", "007", True, "yes", 2.5)]
    ['3', '3', '3', '3', '007', 'true', 'yes', '2.5']
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    if _WHOLE_NUMBER_WITH_ZEROS.fullmatch(text):
        return text.split(".")[0]
    return text


def value_keys(values: np.ndarray) -> np.ndarray:
    """`value_key` over an array of present (non-missing) values, computed once per distinct value."""
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    if values.dtype.kind == "b":
        return np.where(values, "true", "false").astype(object)
    if len(values) <= 64:  # factorizing costs more than it saves on a few rows (a served request)
        return np.array([value_key(value) for value in values], dtype=object)
    codes, uniques = pd.factorize(values)
    keys = np.array([value_key(value) for value in uniques], dtype=object)
    return keys[codes]


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold (other values unchanged)."""
    return value.item() if isinstance(value, np.generic) else value
