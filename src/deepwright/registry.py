"""Named tables of the things a config can choose: feature types, encoders, combiners, metrics.

Entries are added with an explicit decorator in the module that defines them; there is no discovery magic.
Modules that register entries are imported by `load_builtins()` so a lookup always sees all of them.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from deepwright.errors import ConfigError

__all__ = ["COMBINERS", "ENCODERS", "FEATURES", "METRICS", "Registry", "load_builtins"]

T = TypeVar("T")

# Modules whose import registers the built-in entries, in dependency order.
_BUILTIN_MODULES = (
    "deepwright.features.number",
    "deepwright.features.binary",
    "deepwright.features.category",
    "deepwright.features.text",
    "deepwright.features.image",
    "deepwright.features.audio",
    "deepwright.features.sequence",
    "deepwright.features.timeseries",
    "deepwright.models.blocks",
    "deepwright.models.conv",
    "deepwright.models.recurrent",
    "deepwright.models.transformer",
    "deepwright.models.sequence_encoders",
    "deepwright.models.sequence",
    "deepwright.models.combiners",
    "deepwright.evaluation.metrics",
    "deepwright.evaluation.forecast",
)


class Registry(Generic[T]):
    """A name → object table whose misses list the choices and suggest the nearest name.

    >>> colours = Registry("colour")
    >>> @colours.register("red")
    ... def red(): return "#f00"
    >>> colours.get("red")()
    '#f00'
    >>> colours.get("rde")
    Traceback (most recent call last):
    ...
    deepwright.errors.ConfigError: unknown colour 'rde'; did you mean 'red'? Choices: red
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that files the decorated object under `name`; a second entry with that name is a bug."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """The entry called `name`, or a `ConfigError` that lists the choices and the nearest one."""
        load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.miss_message(name)) from None

    def miss_message(self, name: str) -> str:
        """The message for an unknown `name`: the nearest choice, then all of them."""
        close = difflib.get_close_matches(name, self._entries, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        return f"unknown {self.kind} {name!r}{hint} Choices: {', '.join(sorted(self._entries))}"

    def names(self) -> list[str]:
        """All registered names, sorted."""
        load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


FEATURES: Registry = Registry("feature type")
# Encoder builders by "<what the encoder reads>/<encoder config type>" (see `deepwright.models.encoders`).
ENCODERS: Registry = Registry("encoder")
COMBINERS: Registry = Registry("combiner")
METRICS: Registry = Registry("metric")

_loaded = False


def load_builtins() -> None:
    """Import every module that registers built-in entries (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
