"""The server's routes: the web page and its files, /health, /metadata, /plots, /predict and /generate, the error
answers (JSON naming the field, never a traceback) and the OpenAPI schema built from the input features.

`deepwright.deploy.server.create_app` adds them to the app; each takes the `Service`
(`deepwright.deploy.service`) that holds the model, its request schema, its metadata and the inference queue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from deepwright.deploy.batching import InferenceQueue
from deepwright.deploy.schema import Problem, validation_problems
from deepwright.deploy.service import Service
from deepwright.errors import DataError, DeepwrightError

__all__ = [
    "GenerateRequest",
    "add_error_handlers",
    "add_generate_route",
    "add_page_routes",
    "add_predict_route",
    "customise_openapi",
]

LOGGER = logging.getLogger("deepwright.server")
WEB_DIR = Path(__file__).parent / "web"
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_CSV_TYPES = ("text/csv", "application/csv", "text/tab-separated-values")


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


def add_page_routes(app: FastAPI, service: Service) -> None:
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


def add_predict_route(app: FastAPI, service: Service) -> None:
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


def add_generate_route(app: FastAPI, service: Service) -> None:
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


def add_error_handlers(app: FastAPI) -> None:
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


def customise_openapi(app: FastAPI, service: Service) -> None:
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
