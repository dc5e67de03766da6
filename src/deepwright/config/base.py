"""Building blocks every config schema shares: the strict base class, defaults for tagged sections, the
missing-value options, and the option names (activations, initialisers) used across schemas."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from deepwright.errors import DeepwrightWarning

# The key under which passthrough features (numbers, binaries) travel together as one matrix.
PASSTHROUGH_KEY = "__passthrough__"


# The validation-context key that says the caller (`load_config`) warns of renamed keys itself, with their paths.
RENAMES_REPORTED = "renames_reported"


class Strict(BaseModel):
    """Base of every schema: unknown keys are errors, assignments are validated, no number is inf or NaN.

    `renamed_keys` maps the old spelling of a renamed key to the new one. For one release the old spelling is
    still read, with a `DeepwrightWarning`; giving both spellings is an error. The JSON Schema shows only the new
    names.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    renamed_keys: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _read_renamed_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not cls.renamed_keys or not isinstance(data, dict):
            return data
        used = {old: new for old, new in cls.renamed_keys.items() if old in data}
        both = [
            f"{new} and {old} (its deprecated name) are both given; keep {new}"
            for old, new in used.items()
            if new in data
        ]
        if both:
            raise ValueError("; ".join(both))
        if not (info.context or {}).get(RENAMES_REPORTED):
            for old, new in used.items():
                warnings.warn(f"{cls.__name__}.{old} is deprecated; use {new}", DeepwrightWarning, stacklevel=2)
        return {cls.renamed_keys.get(key, key): value for key, value in data.items()}


def renamed_key_paths(data: Any, config: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """The (old, new) key paths of every deprecated key spelling in `data`, the raw mapping `config` was
    validated from, e.g. ("combiner.layers", "combiner.dims").

    >>> class Encoder(Strict):
    ...     renamed_keys = {"size": "dim"}
    ...     dim: int = 1
    >>> class Model(Strict):
    ...     encoders: list[Encoder] = []
    >>> data = {"encoders": [{"dim": 2}, {"size": 3}]}
    >>> config = Model.model_validate(data, context={RENAMES_REPORTED: True})
    >>> config.encoders[1].dim, list(renamed_key_paths(data, config))
    (3, [('encoders[1].size', 'encoders[1].dim')])
    """
    if isinstance(config, (list, tuple)) and isinstance(data, list):
        for index, (item, value) in enumerate(zip(data, config)):
            yield from renamed_key_paths(item, value, f"{path}[{index}]")
        return
    if not (isinstance(config, Strict) and isinstance(data, dict)):
        return
    prefix = f"{path}." if path else ""
    renames = type(config).renamed_keys
    for key, value in data.items():
        name = renames.get(key, key)
        if name != key:
            yield f"{prefix}{key}", f"{prefix}{name}"
        if name in type(config).model_fields:
            yield from renamed_key_paths(value, getattr(config, name), f"{prefix}{name}")


def with_default_type(data: Any, key: str, default: str) -> Any:
    """`data` with `type: default` filled into the mapping under `key` when it names no type."""
    if isinstance(data, dict) and isinstance(data.get(key), dict) and "type" not in data[key]:
        return {**data, key: {"type": default, **data[key]}}
    return data


Activation = Literal["relu", "tanh", "sigmoid", "gelu"]


Initializer = Literal[
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal", "orthogonal"
]


MissingStrategy = Literal["drop_row", "mean", "median", "most_frequent", "constant", "error"]


class MissingValues(Strict):
    """What to do with an empty cell in an input column. Fill values are learned on the training split only."""

    strategy: MissingStrategy | None = Field(
        default=None,
        description="drop_row, mean, median, most_frequent, constant (fill_value) or error; "
        "unset: mean for numbers, most_frequent for binaries, its own category for categories",
    )
    fill_value: float | int | str | bool | None = Field(default=None, description="the value for 'constant'")
    indicator: bool = Field(default=False, description="add a 0/1 input saying the value was missing")

    @model_validator(mode="after")
    def _constant_needs_value(self) -> MissingValues:
        if self.strategy == "constant" and self.fill_value is None:
            raise ValueError("strategy 'constant' needs a fill_value, e.g. {strategy: constant, fill_value: 0}")
        return self


def files_cannot_be_filled(missing: MissingValues, what: str) -> MissingValues:
    """`missing` when its strategy suits a column of files (which no value can fill in)."""
    if missing.strategy not in ("error", "drop_row"):
        raise ValueError(f"{what} cannot be filled in; use strategy 'error' or 'drop_row'")
    return missing
