"""The served-model contract: what the server asks of a loaded model, so that it never guesses from its type.

`Predictor` (model_type `ecd`), `Forecaster` (`forecast`) and `TextGenerator` (`lm`) are each a `ServedModel`.
A model that `can_predict` is also a `RowModel` (the server adds `/predict`); one that `can_generate` is also a
`TextModel` (the server adds `/generate`). A model that can do neither (a forecast, which reads a whole history)
is refused by the server with a `DeployError`. `LoadedModel` is the part of the contract they share, and
`FeatureModel` the loading of a model whose inputs go through a fitted feature set (a table model, a forecast).

>>> from deepwright.deploy.predictor import Predictor
>>> Predictor.can_predict, Predictor.can_generate
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from typing_extensions import Self

from deepwright.deploy.bundle import Bundle, read_bundle
from deepwright.errors import BundleError, DeepwrightError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FeatureModel", "LoadedModel", "RowModel", "ServedModel", "TextModel"]


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


class LoadedModel:
    """The part of a `ServedModel` every loaded model shares: its config, its model in evaluation mode, the
    metrics and bundle it was saved with, and the answers of a model that neither predicts rows nor writes text
    on torch (each kind overrides what it does otherwise)."""

    can_predict = False
    can_generate = False
    runtime_name = "torch"

    def __init__(self, config: Any, model: nn.Module, metrics: dict | None = None, *, bundle: Bundle | None) -> None:
        self.config = config
        self.model = model.eval()
        self.metrics = metrics or {}
        self.bundle = bundle  # the bundle it was loaded from, if any

    @property
    def model_type(self) -> str:
        """The config's model_type: `ecd`, `forecast` or `lm`."""
        return self.config.model_type


class FeatureModel(LoadedModel):
    """A loaded model whose inputs go through a fitted feature set (a table model, a forecast)."""

    def __init__(
        self, config: Any, features: Any, model: nn.Module, metrics: dict | None = None, *, bundle: Bundle | None = None
    ) -> None:
        super().__init__(config, model, metrics, bundle=bundle)
        self.features = features

    @classmethod
    def read(cls, path: str | Path, model_type: str, features_class: Callable[[Any], Any]) -> Self:
        """The model of the bundle at `path` (of `model_type`): its config, its features (`features_class` of the
        config) with their fitted state, and the model they build with the saved weights."""
        bundle = read_bundle(path, model_type=model_type)
        config = bundle.load_config()
        features = features_class(config)
        where = bundle.path / "preprocessing.json"
        try:
            features.load_state(bundle.preprocessing)
        except DeepwrightError as error:
            raise BundleError(f"{where}: does not fit config.json ({error}); save the bundle again") from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:  # JSON of another shape
            raise BundleError(
                f"{where}: does not match config.json ({type(error).__name__}: {error}); save the bundle again"
            ) from None
        model = bundle.build_model(features.build_model)
        bundle.load_weights(model)
        return cls(config, features, model, bundle.metrics, bundle=bundle)

    def preprocessing_state(self) -> dict[str, Any]:
        """What the bundle's preprocessing.json holds: every feature's fitted state."""
        return self.features.state()
