"""The served-model contract: what the server asks of a loaded model, so that it never guesses from its type.

`Predictor` (model_type `ecd`), `Forecaster` (`forecast`) and `TextGenerator` (`lm`) are each a `ServedModel`.
A model that `can_predict` is also a `RowModel` (the server adds `/predict`); one that `can_generate` is also a
`TextModel` (the server adds `/generate`). A model that can do neither (a forecast, which reads a whole history)
is refused by the server with a `DeployError`.

>>> from deepwright.deploy.predictor import Predictor
>>> Predictor.can_predict, Predictor.can_generate
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from deepwright.deploy.bundle import Bundle

__all__ = ["RowModel", "ServedModel", "TextModel"]


class ServedModel(Protocol):
    """A loaded model as the server sees it: its kind, what it can answer, and what its model card shows."""

    @property
    def model_type(self) -> str:
        """The bundle's own model_type (`ecd`, `forecast`, `lm`), shown in /metadata."""

    @property
    def can_predict(self) -> bool:
        """Whether it predicts rows one by one (a `RowModel`: the server's /predict)."""

    @property
    def can_generate(self) -> bool:
        """Whether it continues prompts (a `TextModel`: the server's /generate)."""

    @property
    def config(self) -> Any:
        """The resolved config (a language model's holds its default generation options)."""

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics measured when it was saved (empty for a model not loaded from a bundle)."""

    @property
    def bundle(self) -> Bundle | None:
        """The bundle it was loaded from (its name, plots, creation time and versions), or None."""

    @property
    def runtime_name(self) -> str:
        """What runs its tensor part: `torch` or `onnx`."""

    def predict(self, rows: Any) -> Any:
        """Predictions of `rows` (a model that cannot predict rows raises a `DeepwrightError` saying what to use)."""


class RowModel(ServedModel, Protocol):
    """A model that predicts rows: the server builds the /predict request schema from its input features."""

    @property
    def features(self) -> Any:
        """The fitted feature set: its inputs type the request fields, its outputs the result columns."""

    def predict(self, rows: Any) -> Any:
        """A list of row dicts → a list of prediction dicts; a `Table` → a DataFrame of predictions."""


class TextModel(ServedModel, Protocol):
    """A model that writes text: what /generate needs."""

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None,
        temperature: float | None,
        top_k: int | None,
        top_p: float | None,
        seed: int | None,
        stop: list[str] | None,
    ) -> Iterable[str]:
        """The text that continues `prompt`, piece by piece (None: the bundle's default for that option). A bad
        prompt raises a `DeepwrightError`."""
