"""Model kinds, one module each, and the one table that maps a config's `model_type` to its kind.

| model_type | kind                | data → model                                               |
|------------|---------------------|------------------------------------------------------------|
| ecd        | `TableKind`         | table rows → encoders → combiner → heads (epochs)          |
| forecast   | `ForecastKind`      | windows of a series → the next `horizon` values (epochs)   |
| lm         | `LanguageModelKind` | a corpus → a causal language model (steps)                 |

`Pipeline`, `deepwright.load` and the CLI look a kind up here once and ask it; nothing else branches on
`model_type`.

>>> sorted(MODEL_KINDS)
['ecd', 'forecast', 'lm']
>>> model_kind("lm").can_generate
True
"""

from __future__ import annotations

import json
from pathlib import Path

from deepwright.kinds.base import FitRequest, ModelKind
from deepwright.kinds.forecast import ForecastKind
from deepwright.kinds.language import LanguageModelKind
from deepwright.kinds.table import TableKind

__all__ = ["MODEL_KINDS", "FitRequest", "ModelKind", "bundle_kind", "model_kind"]

MODEL_KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (TableKind(), ForecastKind(), LanguageModelKind())}


def model_kind(model_type: str) -> ModelKind:
    """The kind of `model_type` (the config validated it, so it is one of `MODEL_KINDS`)."""
    return MODEL_KINDS[model_type]


def bundle_kind(path: str | Path) -> ModelKind:
    """The kind of the bundle at `path`, from a glance at its config.json (loading verifies the bundle). An
    unreadable one is taken as a table bundle, whose loader says what is wrong with it."""
    try:
        model_type = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type", "ecd")
    except (OSError, ValueError, AttributeError):
        model_type = "ecd"
    return MODEL_KINDS.get(model_type, MODEL_KINDS["ecd"])
