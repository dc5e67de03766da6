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
never a 500. Model calls run on one worker thread (`InferenceQueue`): single-row requests that arrive together are
predicted in one call. The app loads nothing itself: `create_app` takes a loaded `Predictor`, so a missing or
corrupt bundle stops `deepwright serve` before it listens.

>>> app = create_app(Predictor.from_bundle("runs/quickstart/model"))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import platform
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from deepwright.deploy.batching import InferenceQueue
from deepwright.deploy.middleware import AccessLog, BearerToken, BodyLimit
from deepwright.deploy.schema import (
    Problem,
    example_row,
    input_fields,
    output_fields,
    request_adapter,
    validation_problems,
)
from deepwright.errors import DataError, DeepwrightError, DeployError

__all__ = ["LanguageModel", "ServerSettings", "bind_socket", "create_app", "serve"]

LOGGER = logging.getLogger("deepwright.server")
WEB_DIR = Path(__file__).parent / "web"
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_CSV_TYPES = ("text/csv", "application/csv", "text/tab-separated-values")


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


class GenerateRequest(BaseModel):
    """A `/generate` body; an option left out takes the bundle's default."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="the text to continue")
    max_new_tokens: int | None = Field(default=None, ge=1, description="tokens to generate at most")
    temperature: float | None = Field(default=None, gt=0, description="below 1: surer, above 1: more varied")
    top_k: int | None = Field(default=None, ge=0, description="sample among the k likeliest tokens (0: all)")
    top_p: float | None = Field(default=None, gt=0, le=1, description="sample among the likeliest tokens up to p")
    seed: int | None = Field(default=None, description="the same seed gives the same text")
    stop: list[str] | None = Field(default=None, max_length=8, description="end the text at the first of these")
    stream: bool = Field(default=False, description="send the text as server-sent events while it is made")


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
    service = _Service(predictor, generator, settings, name)
    app = FastAPI(
        title=f"deepwright: {service.name}",
        version=__version__,
        description="Predictions of a deepwright model. Each input field below is typed from the model's bundle.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the web page at / needs none
        redoc_url=None,
        lifespan=service.lifespan,
    )
    app.state.service = service
    _add_page_routes(app, service)
    if predictor is not None:
        _add_predict_route(app, service)
    if generator is not None:
        _add_generate_route(app, service)
    _add_error_handlers(app)
    _customise_openapi(app, service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.token:
        app.add_middleware(BearerToken, token=settings.token, public=_is_public)
    app.add_middleware(AccessLog)
    return app


class _Service:
    """What the routes share: the model, its request schema and metadata, and the inference queue."""

    def __init__(
        self, predictor: Any | None, generator: LanguageModel | None, settings: ServerSettings, name: str | None
    ) -> None:
        self.predictor = predictor
        self.generator = generator
        self.settings = settings
        bundle = getattr(predictor, "bundle", None)
        self.name = name or (bundle.path.name if bundle else None) or "model"
        if bundle is not None and bundle.path.name == "model" and bundle.path.parent.name:
            self.name = name or bundle.path.parent.name  # runs/<run>/model: the run's name says more
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


def _no_predictor(rows: list[dict]) -> list[dict]:
    raise DeployError("this model makes no predictions; use /generate")


# -- routes ------------------------------------------------------------------------------------------------


def _add_page_routes(app: FastAPI, service: _Service) -> None:
    page = (WEB_DIR / "index.html").read_bytes()
    static = {name: (WEB_DIR / name).read_bytes() for name in _STATIC}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(static[name], media_type=_STATIC[name], headers={"cache-control": "no-cache"})

    @app.get("/health", summary="Liveness and load")
    async def health() -> dict[str, Any]:
        """Whether the server answers, and how much it has done."""
        queue = service.queue
        return {
            "status": "ok",
            "model": service.name,
            "uptime_s": round(time.time() - service.started, 3),
            "model_calls": queue.model_calls,
            "batched_rows": queue.rows,
        }

    @app.get("/metadata", summary="The model card")
    async def metadata() -> dict[str, Any]:
        """Inputs (type, JSON type, choices, example), outputs (classes, result columns), metrics, plots,
        versions and limits."""
        return service.metadata

    @app.get("/plots/{name}", summary="A plot of the run")
    async def plot(name: str) -> Response:
        """A PNG the run drew (learning curves, confusion matrices…), as kept in the bundle."""
        if name not in service.plots:
            raise HTTPException(404, f"no plot {name!r}; the plots are {sorted(service.plots) or 'none'}")
        return Response(service.plots[name].read_bytes(), media_type="image/png")


def _add_predict_route(app: FastAPI, service: _Service) -> None:
    input_names = [entry.name for entry in service.fields]
    media = [entry.name for entry in service.fields if entry.request_type == "media"]
    max_rows = service.settings.max_rows

    def predict_csv(data: bytes, source: str) -> Any:
        """Runs on the model thread: parsing a large upload should not hold the event loop."""
        from deepwright.data.media import is_inline
        from deepwright.data.stream import read_delimited_bytes

        table = read_delimited_bytes(data, columns=input_names, source=source)
        if len(table) > max_rows:
            raise DataError(f"has {len(table):,} rows; send at most {max_rows:,} rows per request", source=source)
        for name in media:  # as in JSON rows: files come inline, the server opens no path it is given
            for row, cell in zip(table.frame.index, table.frame[name].tolist()):
                if isinstance(cell, str) and cell.strip() and not is_inline(cell):
                    message = "send the file inline as a data: URL (data:<type>;base64,…); the server reads no paths"
                    raise DataError(message, column=name, row=int(row) + 1, source=source)
        return service.predictor.predict(table)

    @app.post(
        "/predict",
        summary="Predict rows",
        openapi_extra=_predict_openapi(),
        responses={
            200: {"description": "one prediction per row, in order"},
            422: {"description": "a field is missing, unknown or of the wrong type; the message names it"},
        },
    )
    async def predict(request: Request) -> Response:
        """Predict JSON rows, or every row of a CSV file. Each row gives every input field (null for a missing
        value); the answer holds, per row and output, the label and probabilities, or the value."""
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        fields = request.state.log
        format = request.query_params.get("format")  # read here: FastAPI's parameter machinery costs more
        if format not in (None, "json", "csv"):
            return _error(422, [Problem(f"{format!r} is not a choice; choices: json, csv", field="format")])
        try:
            if kind in ("application/json", ""):
                body = await request.body()
                try:
                    rows = service.adapter.validate_json(body or b"null")["rows"]
                except ValidationError as error:
                    problems = validation_problems(error, service.fields)
                    status = 400 if problems and problems[0].message.startswith("the body is not valid JSON") else 422
                    return _error(status, problems)
                fields["rows"] = len(rows)
                if len(rows) == 1:
                    predictions = [await service.queue.predict_row(rows[0])]
                else:
                    predictions = await service.queue.run(service.predictor.predict, rows) if rows else []
                return _respond(predictions, format or "json", "predictions.csv")
            if kind in _CSV_TYPES or kind == "multipart/form-data":
                data, filename = await _uploaded(request, kind)
                source = f"the uploaded file {filename!r}" if filename else "the uploaded CSV"
                frame = await service.queue.run(predict_csv, data, source)
                fields["rows"] = len(frame)
                return _respond(frame, format or "csv", _download_name(filename))
        except DeepwrightError as error:
            return _error(422, service.problems_of(error))
        except Exception as error:  # a bug: answered here, inside the access log, which names the request
            return _internal_error(request, error)
        raise HTTPException(
            415, f"content type {kind!r} is not accepted; send application/json, text/csv or multipart/form-data"
        )


def _add_generate_route(app: FastAPI, service: _Service) -> None:
    settings = service.settings

    @app.post("/generate", summary="Generate text")
    async def generate(request: GenerateRequest) -> Response:
        """Continue the prompt; with "stream": true, the text comes as server-sent events ({"text": piece}),
        ending with an 'end' event holding the whole text."""
        if len(request.prompt) > settings.max_prompt_chars:
            return _error(422, [Problem(f"longer than {settings.max_prompt_chars:,} characters", field="prompt")])
        if (request.max_new_tokens or 0) > settings.max_new_tokens:
            return _error(422, [Problem(f"at most {settings.max_new_tokens:,}", field="max_new_tokens")])
        options = request.model_dump(exclude={"prompt", "stream"})

        def start() -> tuple[Iterator[str], str | None]:
            pieces = iter(service.generator.stream(request.prompt, **options))
            return pieces, next(pieces, None)

        try:
            pieces, first = await service.queue.run(start)  # a bad prompt fails here, before anything is sent
        except DeepwrightError as error:
            return _error(422, service.problems_of(error))
        if not request.stream:
            rest = await service.queue.run(lambda: "".join(pieces))
            return _json({"text": (first or "") + rest})
        return StreamingResponse(_events(service.queue, first, pieces), media_type="text/event-stream")


async def _events(queue: InferenceQueue, first: str | None, pieces: Iterator[str]) -> AsyncIterator[bytes]:
    """Server-sent events of the generated pieces, each made on the model thread, then the whole text."""
    text = []
    piece = first
    while piece is not None:
        text.append(piece)
        yield f"data: {json.dumps({'text': piece})}\n\n".encode()
        piece = await queue.run(next, pieces, None)
    yield f"event: end\ndata: {json.dumps({'text': ''.join(text)})}\n\n".encode()


async def _uploaded(request: Request, kind: str) -> tuple[bytes, str | None]:
    """The CSV bytes of a request and their file name: the body itself (no name), or the multipart field 'file'."""
    if kind != "multipart/form-data":
        return await request.body(), None
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise DataError("send the CSV file as the form field 'file'", column="file")
        return await upload.read(), upload.filename or None


def _download_name(filename: str | None) -> str:
    """The file name offered for the predictions of an upload: '<its stem>-predictions.csv', kept to safe
    characters (it goes into a header).

    >>> _download_name('my "data".csv'), _download_name(None)
    ('my__data_-predictions.csv', 'predictions.csv')
    """
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in Path(filename or "").stem)
    return f"{stem.strip('.')}-predictions.csv" if stem.strip("._") else "predictions.csv"


def _respond(predictions: Any, format: str, filename: str) -> Response:
    """Predictions (a list of dicts or a DataFrame) as JSON or as a downloadable CSV."""
    import pandas as pd

    if format == "csv":
        frame = predictions if isinstance(predictions, pd.DataFrame) else pd.DataFrame(predictions)
        return Response(
            frame.to_csv(index=False, lineterminator="\n"),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
    if isinstance(predictions, pd.DataFrame):
        columns = list(predictions.columns)
        values = zip(*(predictions[column].tolist() for column in columns))
        predictions = [dict(zip(columns, row)) for row in values]
    return _json({"predictions": predictions})


def _json(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content), status_code=status, media_type="application/json")


def _error(status: int, problems: list[Problem]) -> Response:
    """A 4xx answer: the first problem as the message, and every problem with its field and row."""
    more = len(problems) - 1
    message = str(problems[0]) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    return _json({"error": message, "problems": [problem.to_dict() for problem in problems]}, status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for issue in error.errors():
            location = [str(part) for part in issue.get("loc", ()) if part not in ("body", "query", "path")]
            problems.append(Problem(issue.get("msg", "invalid"), field=".".join(location) or None))
        return _error(422, problems or [Problem("invalid request")])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return _json({"error": str(error.detail)}, error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        return _internal_error(request, error)


def _internal_error(request: Request, error: Exception) -> Response:
    """A 500 for a bug: the traceback goes to the server log under the request's id, which the answer names."""
    request_id = request.scope.get("state", {}).get("request_id", "")
    LOGGER.error(
        "internal error", exc_info=error, extra={"fields": {"request_id": request_id, "path": request.url.path}}
    )
    return _json({"error": f"internal error; see the server log for request {request_id}"}, 500)


def _customise_openapi(app: FastAPI, service: _Service) -> None:
    """Add the request schema generated from the input features to the OpenAPI components."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            if service.adapter is not None:
                request = service.adapter.json_schema(ref_template="#/components/schemas/{model}")
                components.update(request.pop("$defs", {}))
                components["PredictRequest"] = request
                if service.metadata["example"] is not None:
                    request["examples"] = [{"rows": [service.metadata["example"]]}]
            components["PredictResponse"] = {
                "type": "object",
                "properties": {"predictions": {"type": "array", "items": {"type": "object"}}},
                "required": ["predictions"],
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _predict_openapi() -> dict[str, Any]:
    return {
        "parameters": [
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"enum": ["json", "csv"]},
                "description": "the answer's format (default: that of the request)",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                "text/csv": {"schema": {"type": "string", "description": "a CSV file with a header line"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        },
        "responses": {
            "200": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
                    "text/csv": {"schema": {"type": "string"}},
                }
            }
        },
    }


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
