"""deepwright: take a deep-learning model from raw data to a served bundle, driven by one declarative config.

>>> import deepwright as dp
>>> dp.__version__
'0.1.0'

The heavy parts (torch, pandas) load on first use of `Pipeline` or `load`, so importing the package is quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deepwright.version import __version__

__all__ = ["Pipeline", "__version__", "load"]

if TYPE_CHECKING:
    from deepwright.api import Pipeline, load


def __getattr__(name: str) -> Any:
    if name in ("Pipeline", "load"):
        from deepwright import api

        return getattr(api, name)
    raise AttributeError(f"module 'deepwright' has no attribute {name!r}")
