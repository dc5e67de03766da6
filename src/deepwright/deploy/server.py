"""The prediction server: a FastAPI app over a `Predictor`, and `serve`, which runs it with uvicorn.

    GET  /              the web page: model card, a form for one prediction, CSV upload (deploy/web/)
    GET  /health        {"status": "ok", …}; never needs the token
    GET  /metadata      inputs (types, choices, examples), outputs (classes), metrics, plots, versions, limits
    GET  /plots/NAME    a plot of the run, kept in the bundle
    POST /predict       {"rows": [{…}, …]} → {"predictions": [{…}, …]}; or a CSV file (a text/csv body, or the
                        multipart field 'file') → a CSV of predictions (JSON with ?format=json)
    POST /generate      language models only: a prompt → text, streamed as server-sent events with "stream": true
    GET  /openapi.json  the OpenAPI schema, each input field typed and documented from the bundle

A bad request gets a 4xx with {"error": message, "problems": [{"message", "field", "row"}, …]} naming the field,
never a 500. Model calls are made one at a time (`InferenceQueue`): single-row requests that arrive together are
predicted in one call. The app loads nothing itself: `create_app` takes a loaded `Predictor`, so a missing or
corrupt bundle stops `deepwright serve` before it listens. The routes are in `deepwright.deploy.routes`.

>>> app = create_app(Predictor.from_bundle("runs/quickstart/model"))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import logging
import platform
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI

from deepwright.deploy.batching import InferenceQueue
from deepwright.deploy.middleware import AccessLog, BearerToken, BodyLimit
from deepwright.deploy.routes import (
    add_error_handlers,
    add_generate_route,
    add_page_routes,
    add_predict_route,
    customise_openapi,
)
from deepwright.deploy.schema import (
    Problem,
    example_row,
    input_fields,
    output_fields,
    request_adapter,
)
from deepwright.errors import DataError, DeepwrightError, DeployError

__all__ = ["LanguageModel", "ServerSettings", "Service", "bind_socket", "bundle_name", "create_app", "serve"]

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


class LanguageModel(Protocol):
    """What `/generate` needs from a language model (`deepwright.deploy.generator.LanguageModel` is one)."""

    can_generate: bool

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


# -- the app -----------------------------------------------------------------------------------------------


def create_app(
    predictor: Any | None,
    settings: ServerSettings | None = None,
    *,
    generator: LanguageModel | None = None,
    name: str | None = None,
) -> FastAPI:
    """The FastAPI app serving `predictor` (a `Predictor`) and/or `generator` (a language model): `/predict` is
    there when a predictor is given, `/generate` when a generator is."""
    from deepwright import __version__

    if predictor is None and generator is None:
        raise ValueError("give a predictor, a generator, or both")
    settings = settings or ServerSettings()
    service = Service(predictor, generator, settings, name)
    app = FastAPI(
        title=f"deepwright: {service.name}",
        version=__version__,
        description="Predictions of a deepwright model. Each input field below is typed from the model's bundle.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the web page at / needs none
        redoc_url=None,
        lifespan=service.lifespan,
    )
    app.state.service = service
    add_page_routes(app, service)
    if predictor is not None:
        add_predict_route(app, service)
    if generator is not None:
        add_generate_route(app, service)
    add_error_handlers(app)
    customise_openapi(app, service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.token:
        app.add_middleware(BearerToken, token=settings.token, public=_is_public)
    app.add_middleware(AccessLog)
    return app


class Service:
    """What the routes share: the model, its request schema and metadata, and the inference queue."""

    # attributes the routes read: predictor, generator, settings, name, started, fields, adapter, queue, plots,
    # metadata

    def __init__(
        self, predictor: Any | None, generator: LanguageModel | None, settings: ServerSettings, name: str | None
    ) -> None:
        self.predictor = predictor
        self.generator = generator
        self.settings = settings
        bundle = getattr(predictor, "bundle", None)
        self.name = name or (bundle_name(bundle.path) if bundle is not None else "model")
        self.started = time.time()
        self.fields = input_fields(predictor.features) if predictor is not None else []
        self.adapter = request_adapter(self.fields, settings.max_rows) if predictor is not None else None
        self.queue = InferenceQueue(
            predictor.predict if predictor is not None else _no_predictor,
            max_batch=settings.max_batch,
            max_wait_ms=settings.batch_wait_ms,
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
        predictor, settings = self.predictor, self.settings
        bundle = getattr(predictor, "bundle", None)
        runtime = getattr(getattr(predictor, "runtime", None), "name", None)
        outputs = output_fields(predictor.features) if predictor is not None else []
        for output in outputs:
            output["columns"] = [column for column in result_columns if column.startswith(f"{output['name']}_")]
        return {
            "name": self.name,
            "model_type": "ecd" if predictor is not None else "lm",
            "runtime": runtime,
            "inputs": [entry.metadata() for entry in self.fields],
            "outputs": outputs,
            "example": example_row(self.fields),
            "metrics": getattr(predictor or self.generator, "metrics", {}) or {},
            "generation": _generation_defaults(self.generator),
            "plots": sorted(self.plots),
            "created": bundle.manifest.get("created") if bundle else None,
            "versions": {"bundle": bundle.manifest.get("versions", {}) if bundle else {}, "server": _versions(runtime)},
            "limits": {
                "max_rows": settings.max_rows,
                "max_body_bytes": settings.max_body_bytes,
                "max_batch": settings.max_batch,
                "batch_wait_ms": settings.batch_wait_ms,
            },
            "can_predict": predictor is not None,
            "can_generate": self.generator is not None,
            "needs_token": bool(settings.token),
        }

    def problems_of(self, error: DeepwrightError) -> list[Problem]:
        """An error from preprocessing as request problems (a `DataError` names its row and column)."""
        if isinstance(error, DataError):
            return [Problem(error.reason, field=error.column, row=error.row)]
        return [Problem(str(error))]


def bundle_name(path: str | Path) -> str:
    """What a bundle is called on its web page: the run's name for runs/<run>/model, else its folder's.

    >>> bundle_name("runs/titanic/model"), bundle_name("exported/bundle")
    ('titanic', 'bundle')
    """
    folder = Path(path).resolve()
    return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name


def _no_predictor(rows: list[dict]) -> list[dict]:
    raise DeployError("this model makes no predictions; use /generate")


def _is_public(path: str) -> bool:
    """Paths anyone may fetch: the health check and the web page's own files (they hold nothing of the model)."""
    return path in ("/", "/health", "/favicon.ico") or path.startswith("/static/")


def _plots(bundle: Any) -> dict[str, Path]:
    """The bundle's plots by file name (only files its manifest lists, so no other path can be asked for)."""
    if bundle is None:
        return {}
    names = [name for name in bundle.manifest.get("files", {}) if name.startswith("plots/") and name.endswith(".png")]
    return {Path(name).name: bundle.path / name for name in names}


def _generation_defaults(generator: Any) -> dict[str, Any] | None:
    """A language model's default generation options (None for other models)."""
    defaults = getattr(getattr(generator, "config", None), "generation", None)
    return defaults.model_dump(mode="json") if hasattr(defaults, "model_dump") else None


def _versions(runtime: str | None) -> dict[str, str]:
    import fastapi
    import torch

    from deepwright import __version__

    versions = {"deepwright": __version__, "python": platform.python_version(), "fastapi": fastapi.__version__}
    versions["torch"] = torch.__version__
    if runtime == "onnx":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


# -- running -----------------------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, not listening yet (`serve` listens once the model is ready), or a
    `DeployError` saying why it cannot be (the port in use…)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise DeployError(f"cannot listen on {host}:{port}: unknown host ({error.strerror}); check --host") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
    except OSError as error:
        sock.close()
        raise _listen_error(error, host, port) from None
    return sock


def _listen(sock: socket.socket, host: str, port: int) -> None:
    """Start listening on a bound socket (a second server may have taken the port since it was bound)."""
    try:
        sock.listen(2048)
    except OSError as error:
        raise _listen_error(error, host, port) from None


def _listen_error(error: OSError, host: str, port: int) -> DeployError:
    if error.errno == errno.EADDRINUSE:
        return DeployError(
            f"port {port} on {host} is already in use (another server?); stop it, or choose another port with --port"
        )
    if error.errno == errno.EACCES:
        return DeployError(f"no permission to listen on port {port}; choose a port above 1023")
    return DeployError(f"cannot listen on {host}:{port} ({error.strerror}); check --host and --port")


def serve(
    predictor: Any | None,
    settings: ServerSettings,
    *,
    generator: LanguageModel | None = None,
    sock: socket.socket | None = None,
    name: str | None = None,
) -> None:
    """Run the server until it is stopped by Ctrl+C or SIGTERM, then return: it stops accepting connections,
    lets in-flight requests finish (up to `graceful_timeout_s`), and answers what the inference queue holds."""
    import signal

    import uvicorn

    sock = sock or bind_socket(settings.host, settings.port)
    app = create_app(predictor, settings, generator=generator, name=name)
    _listen(sock, settings.host, settings.port)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # the AccessLog middleware writes structured lines instead
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        lifespan="on",
    )
    # uvicorn handles the signals while it runs, then raises them again once it has shut down; these handlers
    # turn that into a normal return, so a stopped server exits with status 0.
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, _raise_stopped)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Stopped(Exception):
    """The server was asked to stop and has shut down."""


def _raise_stopped(number: int, frame: Any) -> None:
    raise _Stopped
