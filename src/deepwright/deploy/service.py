"""The service the routes share: the served model, its request schema, its metadata and the inference queue, with
the settings the server runs under.

`deepwright.deploy.routes` takes a `Service`; `deepwright.deploy.server.create_app` makes one from a loaded model
(a `deepwright.deploy.served.ServedModel`) and adds the routes. The service asks the model what it is and what it
can answer, and refuses (`DeployError`) a model that can neither predict rows nor write text.
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from deepwright.deploy.batching import InferenceQueue
from deepwright.deploy.schema import Problem, example_row, input_fields, output_fields, request_adapter
from deepwright.deploy.served import RowModel, ServedModel, TextModel
from deepwright.errors import ConfigError, DataError, DeepwrightError, DeployError
from deepwright.version import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

    from deepwright.deploy.bundle import Bundle

__all__ = ["ServerSettings", "Service", "bundle_name"]

LOGGER = logging.getLogger("deepwright.server")


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens, what it accepts, and how it batches."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # requests need 'Authorization: Bearer <token>' when set
    max_rows: int = 10_000  # rows per request
    max_body_bytes: int = 32 << 20
    max_batch: int = 64  # single-row requests merged into one model call
    batch_wait_ms: float = 0.0  # how long a lone single-row request waits for others (0: batches form from the rows
    # that queue while the model is busy, adding no wait)
    graceful_timeout_s: float = 10.0  # on shutdown, how long in-flight requests may take to finish
    max_prompt_chars: int = 10_000
    max_new_tokens: int = 2_000
    max_text_chars: int = 100_000  # characters in one string field of a row (files sent inline excepted)
    max_queued_requests: int = 1_000  # requests admitted at once (waiting or running); more get a 429
    max_queued_rows: int = 100_000  # rows admitted at once; more get a 429
    chunk_rows: int = 256  # rows per model call of a many-row request (single rows are answered between chunks)
    max_bytes_in_flight: int = 256 << 20  # request bodies held at once (at least one of max_body_bytes); more: 503

    def __post_init__(self) -> None:
        """Refuse settings that cannot work (`ConfigError`), before anything listens."""
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not a port number; choose --port between 1 and 65535")
        counts = {
            "max_rows": self.max_rows,
            "max_body_bytes": self.max_body_bytes,
            "max_batch": self.max_batch,
            "max_prompt_chars": self.max_prompt_chars,
            "max_new_tokens": self.max_new_tokens,
            "max_text_chars": self.max_text_chars,
            "max_queued_requests": self.max_queued_requests,
            "max_queued_rows": self.max_queued_rows,
            "chunk_rows": self.chunk_rows,
            "max_bytes_in_flight": self.max_bytes_in_flight,
        }
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"server setting {name} must be a whole number of at least 1, not {value!r}")
        for name, value in {"batch_wait_ms": self.batch_wait_ms, "graceful_timeout_s": self.graceful_timeout_s}.items():
            if not 0 <= value < math.inf:  # also False for NaN
                raise ConfigError(f"server setting {name} must be a finite number of at least 0, not {value!r}")
        if self.max_queued_rows < self.max_rows:
            raise ConfigError(f"max_queued_rows ({self.max_queued_rows:,}) must hold max_rows ({self.max_rows:,})")


class Service:
    """What the routes share: the model (as `predictor` when it predicts rows, as `generator` when it writes
    text), its request schema and metadata, and the inference queue."""

    def __init__(self, model: ServedModel, settings: ServerSettings, name: str | None = None) -> None:
        bundle = model.bundle
        self.name = name or (bundle_name(bundle.path) if bundle is not None else "model")
        if not (model.can_predict or model.can_generate):
            raise DeployError(
                f"{self.name}: a model of model_type {model.model_type!r} cannot be served; the server predicts rows "
                "(model_type ecd) and writes text (model_type lm); use 'deepwright predict' for this model"
            )
        self.model = model
        self.predictor = cast(RowModel, model) if model.can_predict else None
        self.generator = cast(TextModel, model) if model.can_generate else None
        self.settings = settings
        self.started = time.time()
        self.fields = input_fields(self.predictor.features) if self.predictor is not None else []
        self.adapter = request_adapter(self.fields, settings.max_rows) if self.predictor is not None else None
        self.queue = InferenceQueue(
            model.predict,
            max_batch=settings.max_batch,
            max_wait_ms=settings.batch_wait_ms,
            max_queued_requests=settings.max_queued_requests,
            max_queued_rows=settings.max_queued_rows,
            chunk_rows=settings.chunk_rows,
        )
        self.plots = _plots(bundle)
        self.metadata = self._metadata(self._warm_up())

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Start the inference queue with the app; on shutdown, finish what is queued."""
        await self.queue.start()
        LOGGER.info("started", extra={"fields": {"model": self.name, "runtime": self.metadata["runtime"]}})
        try:
            yield
        finally:
            await self.queue.stop()
            LOGGER.info("stopped", extra={"fields": {"model_calls": self.queue.model_calls}})

    def problems_of(self, error: DeepwrightError) -> list[Problem]:
        """An error from preprocessing as request problems (a `DataError` names its row and column)."""
        if isinstance(error, DataError):
            return [Problem(error.reason, field=error.column, row=error.row)]
        return [Problem(str(error))]

    def _warm_up(self) -> list[str]:
        """Predict the example row once (the first call is slow, and a model that cannot predict should fail
        now, not on the first request); return the result columns."""
        if self.predictor is None:
            return []
        example = example_row(self.fields)
        if example is None:
            return []
        try:
            return list(self.predictor.predict([example])[0])
        except DeepwrightError as error:
            raise DeployError(f"the model cannot predict its own example row: {error}") from None

    def _metadata(self, result_columns: list[str]) -> dict[str, Any]:
        model, settings, bundle = self.model, self.settings, self.model.bundle
        outputs = output_fields(self.predictor.features) if self.predictor is not None else []
        for output in outputs:
            output["columns"] = [column for column in result_columns if column.startswith(f"{output['name']}_")]
        return {
            "name": self.name,
            "model_type": model.model_type,
            "runtime": model.runtime_name,
            "inputs": [entry.metadata() for entry in self.fields],
            "outputs": outputs,
            "example": example_row(self.fields),
            "metrics": model.metrics,
            "generation": model.config.generation.model_dump(mode="json") if model.can_generate else None,
            "plots": sorted(self.plots),
            "created": bundle.manifest.get("created") if bundle else None,
            "versions": {
                "bundle": bundle.manifest.get("versions", {}) if bundle else {},
                "server": _versions(model.runtime_name),
            },
            "limits": {
                "max_rows": settings.max_rows,
                "max_body_bytes": settings.max_body_bytes,
                "max_batch": settings.max_batch,
                "batch_wait_ms": settings.batch_wait_ms,
                "max_text_chars": settings.max_text_chars,
                "max_queued_requests": settings.max_queued_requests,
                "max_queued_rows": settings.max_queued_rows,
                "chunk_rows": settings.chunk_rows,
                "max_bytes_in_flight": max(settings.max_bytes_in_flight, settings.max_body_bytes),
                "max_prompt_chars": settings.max_prompt_chars,
                "max_new_tokens": settings.max_new_tokens,
            },
            "can_predict": model.can_predict,
            "can_generate": model.can_generate,
            "needs_token": bool(settings.token),
        }


def bundle_name(path: str | Path) -> str:
    """What a bundle is called on its web page: the run's name for runs/<run>/model, else its folder's.

    >>> bundle_name("runs/titanic/model"), bundle_name("exported/bundle")
    ('titanic', 'bundle')
    """
    folder = Path(path).resolve()
    return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name


def _plots(bundle: Bundle | None) -> dict[str, bytes]:
    """The bundle's plots by file name, read once now: only the files its manifest lists directly under plots/
    (which `read_bundle` verified lie inside the bundle), so no other file can be asked for, even if the folder
    changes later."""
    if bundle is None:
        return {}
    names = [name for name in bundle.manifest.get("files", {}) if re.fullmatch(r"plots/[^/\\]+\.png", name)]
    return {name.removeprefix("plots/"): (bundle.path / name).read_bytes() for name in names}


def _versions(runtime: str) -> dict[str, str]:
    import fastapi
    import torch

    versions = {"deepwright": __version__, "python": platform.python_version(), "fastapi": fastapi.__version__}
    versions["torch"] = torch.__version__
    if runtime == "onnx":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions
