"""The contract every feature type fulfils, and the helpers feature modules share.

A feature type is one module in `features/`: a subclass of `Feature`, registered in `FEATURES` by its config
`type`. Built with its config options and a role (`"input"` or `"output"`), it

- learns its preprocessing state from the training column (`fit`) and turns raw values into arrays
  (`transform`); the state round-trips through JSON (`state` / `load_state`);
- as an input, is either *passthrough* (its transformed matrix joins the one shared numeric block) or builds
  an encoder module that maps its array to a fixed-size vector: by default the encoder its `options.encoder`
  describes for what it reads (`encoder_input`), dispatched by `deepwright.models.encoders`;
- as an output, builds its head, computes its loss and metrics, and turns logits into rows (`postprocess`).

The pipeline, `FeatureSet` and the server call every method of `Feature` on every feature; the optional hooks
have defaults here that a type overrides when it needs them:

    cache_dir           where a type that decodes files keeps what it decoded (set by `FeatureSet`)
    reads_files         whether the column holds file paths, resolved against the data file's folder
    transform_many      transform several features of one type together (number: one block)
    locate              tell a lazily decoded array where its rows came from, for its later errors
    request_type        the JSON value a served request gives (see `deepwright.deploy.schema`)
    request_hints       {"example", "choices", …} for the API documentation and the web page's form
    accepts_missing     whether a served request may send null for this input
    labels_             output: the classes as they appeared in the data (classifiers), else None

Feature code never knows where values came from: a bad value raises `ValueProblem(position, message)`, and
the caller, which knows the file and row numbers, turns it into a `DataError` naming file, row and column.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from deepwright.errors import NotFittedError
from deepwright.models.encoders import EncoderInput, build_encoder, encoder_width

__all__ = ["Feature", "Role", "ValueProblem", "check_is_fitted", "plain", "value_key", "value_keys"]

Role = Literal["input", "output"]
_WHOLE_NUMBER_WITH_ZEROS = re.compile(r"-?\d+\.0+")


class ValueProblem(Exception):
    """A raw value a preprocessor cannot use, at `position` in the array it was given (None: the whole column)."""

    def __init__(self, position: int | None, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


class Feature(ABC):
    """What the rest of deepwright needs from a feature type (see the module docstring).

    Subclasses implement the abstract methods; the others have the defaults documented on each.
    """

    passthrough: ClassVar[bool] = False
    reads_files: ClassVar[bool] = False
    request_type: ClassVar[str] = "any"
    cache_dir: Path | None = None
    labels_: list[Any] | None = None

    def __init__(self, options: Any, role: Role) -> None:
        self.name: str = options.name
        self.options = options
        self.role: Role = role

    # -- preprocessing -----------------------------------------------------------------------------------

    @abstractmethod
    def fit(self, values: np.ndarray) -> None:
        """Learn preprocessing state from the training split's raw values."""

    @abstractmethod
    def transform(self, values: np.ndarray) -> Any:
        """Raw values → the array the encoder (input) or the loss (output) takes."""

    @classmethod
    def transform_many(cls, features: list[Any], columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs of this type transformed together: {name → array} for those it handled; each feature it leaves
        out goes through its own `transform`. Default: none handled."""
        return {}

    def locate(self, array: Any, row_numbers: np.ndarray, source: str) -> None:
        """Input: tell `array`, what `transform` returned, where its rows came from, when it reads them later
        (a lazily decoded column). Default: nothing to tell."""
        return None

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The learned state as JSON-able data."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""

    # -- input side --------------------------------------------------------------------------------------

    def encoder_input(self) -> EncoderInput:
        """Input, not passthrough: what its encoder reads, from the fitted state. Default: a `TypeError`, for
        passthrough types."""
        raise TypeError(f"{self.options.type} inputs are passthrough and have no encoder")

    def width(self) -> int:
        """Input, passthrough: columns of the transformed matrix (passthrough types override this). Otherwise:
        the encoder's output size; by default that of the encoder `build_encoder` returns, found without
        building its weights."""
        return encoder_width(self.options.encoder, self.encoder_input())

    def build_encoder(self) -> Any:
        """Input, not passthrough: the `torch.nn.Module` that encodes this feature's array. Default: the encoder
        `options.encoder` describes for `encoder_input()`."""
        return build_encoder(self.options.encoder, self.encoder_input())

    def request_hints(self) -> dict[str, Any]:
        """Served input: {"example": value, "choices": [...], "open_choices": bool, "accept": "image/*", …} for
        the API documentation and the web page's form. Default: no hints."""
        return {}

    def accepts_missing(self) -> bool:
        """Served input: whether a request may send null (a missing value, filled as the `missing` option says).
        Default: unless the missing strategy is `error`."""
        return self.options.missing.strategy != "error"

    # -- output side -------------------------------------------------------------------------------------

    def build_head(self, input_size: int) -> Any:
        """Output: the `torch.nn.Module` from the combiner's vector to this output's logits. Default: a
        `TypeError`, for input-only types (as are `loss`, `metrics` and `postprocess`)."""
        raise self._not_an_output()

    def loss(self, logits: Any, target: Any) -> Any:
        """Output: the scalar loss tensor for a batch."""
        raise self._not_an_output()

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        """Output: metrics of logits against transformed targets, in the data's own units."""
        raise self._not_an_output()

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        """Output: logits → result columns (label, probabilities or value), named after the feature."""
        raise self._not_an_output()

    def _not_an_output(self) -> TypeError:
        return TypeError(f"{self.options.type} features cannot be outputs")


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
