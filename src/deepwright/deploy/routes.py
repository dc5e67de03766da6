"""The server's routes: the web page and its files, /health, /metadata, /plots, /predict and /generate, and the
error answers (JSON naming the field, never a traceback).

`deepwright.deploy.server.create_app` adds them to the app; each takes the `Service`
(`deepwright.deploy.service`) that holds the model, its request schema, its metadata and the inference queue.

Every refusal is a 4xx: a `DeepwrightError` (a value the preprocessing refuses, a CSV that cannot be read) is a
422 naming the row and field, a malformed body or multipart form a 400, a body or string field over its limit a
413, a full queue a 429 and a stopping server a 503 (both with `Retry-After`), a wrong method a 405 with `Allow`.
Only an error that is none of these (a bug) is a 500, its traceback in the server log under the request's id.
A request of many rows is predicted in chunks, so that single rows are answered between them.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from deepwright.deploy.batching import InferenceQueue, Overloaded
from deepwright.deploy.openapi import generate_openapi, predict_openapi
from deepwright.deploy.schema import Problem, validation_problems
from deepwright.deploy.service import Service
from deepwright.errors import DataError, DeepwrightError

__all__ = [
    "GenerateRequest",
    "add_error_handlers",
    "add_generate_route",
    "add_page_routes",
    "add_predict_route",
]

LOGGER = logging.getLogger("deepwright.server")
WEB_DIR = Path(__file__).parent / "web"
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_CSV_TYPES = ("text/csv", "application/csv", "text/tab-separated-values")
_SMALL_BODY = 64 << 10  # a single row in a body up to this size joins the batch of single rows (see batching)
_TOKENS_PER_CALL = 32  # tokens a /generate call makes at a time on the model thread (others run in between)
_GREEDY_BELOW = 1e-3  # a temperature below this samples as 0 does (the likeliest token): logits / t overflows
_SEED = Field(default=None, ge=-(2**63), le=2**64 - 1, description="the same seed gives the same text")


class GenerateRequest(BaseModel):
    """A `/generate` body; an option left out takes the bundle's default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    prompt: str = Field(description="the text to continue")
    max_new_tokens: int | None = Field(default=None, ge=1, description="tokens to generate at most")
    temperature: float | None = Field(default=None, gt=0, description="below 1: surer, above 1: more varied")
    top_k: int | None = Field(default=None, ge=0, description="sample among the k likeliest tokens (0: all)")
    top_p: float | None = Field(default=None, gt=0, le=1, description="sample among the likeliest tokens up to p")
    seed: int | None = _SEED
    stop: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=8, description="end the text at the first of these"
    )
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
        """Whether the server answers, and how much it has done and holds."""
        queue = service.queue
        return {
            "status": "ok",
            "model": service.name,
            "uptime_s": round(time.time() - service.started, 3),
            "model_calls": queue.model_calls,
            "batched_rows": queue.rows,
            "queued_requests": queue.queued_requests,
            "queued_rows": queue.queued_rows,
            "refused": queue.refused,
        }

    @app.head("/health", include_in_schema=False)
    async def health_head() -> Response:
        return Response(media_type="application/json")

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
        return Response(service.plots[name], media_type="image/png")


def add_predict_route(app: FastAPI, service: Service) -> None:
    input_names = [entry.name for entry in service.fields]
    media = [entry.name for entry in service.fields if entry.request_type == "media"]
    strings = [entry.name for entry in service.fields if entry.request_type != "media"]
    settings = service.settings

    def parse_csv(data: bytes, source: str, delimiter: str) -> Any:
        """The upload as a `Table` of at most max_rows rows, inline files only and no string over its limit; on
        a worker thread of its own (parsing a large upload holds neither the event loop nor the model)."""
        from deepwright.data.media import is_inline
        from deepwright.data.stream import read_delimited_bytes

        try:
            table = read_delimited_bytes(data, columns=input_names, source=source, delimiter=delimiter)
        except (ValueError, csv.Error) as error:  # a parser's refusal of the bytes sent (encoding, quoting…)
            reason = f"cannot be read as CSV ({type(error).__name__}: {_first_line(error)})"
            raise DataError(reason, source=source) from None
        if len(table) > settings.max_rows:
            reason = f"has {len(table):,} rows; send at most {settings.max_rows:,} rows per request"
            raise DataError(reason, source=source)
        for name in media:  # as in JSON rows: files come inline, the server opens no path it is given
            for row, cell in zip(table.frame.index, table.frame[name].tolist()):
                if isinstance(cell, str) and cell.strip() and not is_inline(cell):
                    message = "send the file inline as a data: URL (data:<type>;base64,…); the server reads no paths"
                    raise DataError(message, column=name, row=int(row) + 1, source=source)
        for name in strings:
            _check_lengths(table.frame[name].tolist(), name, settings.max_text_chars, table.frame.index + 1)
        return table

    @app.post("/predict", summary="Predict rows", openapi_extra=predict_openapi())
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
                for name in strings:
                    _check_lengths([row[name] for row in rows], name, settings.max_text_chars, range(1, len(rows) + 1))
                with service.queue.admitted(len(rows)):
                    predictions = await _predict_records(service, rows, len(body))
                return _respond(predictions, format or "json", "predictions.csv")
            if kind in _CSV_TYPES or kind == "multipart/form-data":
                data, filename = await _uploaded(request, kind)
                source = f"the uploaded file {filename!r}" if filename else "the uploaded CSV"
                delimiter = "\t" if kind == "text/tab-separated-values" else ","
                table = await asyncio.to_thread(parse_csv, data, source, delimiter)
                fields["rows"] = len(table)
                with service.queue.admitted(len(table)):
                    frame = await _predict_table(service, table, len(data))
                return _respond(frame, format or "csv", _download_name(filename))
        except DeepwrightError as error:
            return _error(422, service.problems_of(error))
        except _TooLarge as error:
            return _error(413, [error.problem])
        except Overloaded as error:
            return _error(error.status, [Problem(str(error))], headers={"retry-after": str(error.retry_after)})
        except HTTPException:  # the form parser's 400 (no boundary, too many parts, a part too large…)
            raise
        except ClientDisconnect:
            return _error(400, [Problem("the client closed the connection before the whole body arrived")])
        except Exception as error:  # a bug: answered here, inside the access log, which names the request
            return _internal_error(request, error)
        raise HTTPException(
            415, f"content type {kind!r} is not accepted; send application/json, text/csv or multipart/form-data"
        )


class _TooLarge(Exception):
    """A string field over the server's limit (a 413 naming the row and field)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _check_lengths(values: list[Any], name: str, limit: int, row_numbers: Any) -> None:
    """Refuse (`_TooLarge`) the first string of `values` longer than `limit` characters."""
    for row, value in zip(row_numbers, values):
        if isinstance(value, str) and len(value) > limit:
            message = (
                f"{len(value):,} characters, above the server's limit of {limit:,}; send shorter text, or start the "
                "server with a larger --max-text-chars"
            )
            raise _TooLarge(Problem(message, field=name, row=int(row)))


async def _predict_records(service: Service, rows: list[dict], body_bytes: int) -> list[dict]:
    """Predictions of JSON rows: a small single row with the other single rows, many rows in chunks (each a
    model call of its own, so that others are answered between them); an error names its row in the request."""
    queue = service.queue
    if len(rows) == 1 and body_bytes <= _SMALL_BODY:
        return [await queue.predict_row(rows[0])]
    size = queue.chunk_size(len(rows), body_bytes)
    predictions: list[dict] = []
    for start in range(0, len(rows), size):
        try:
            predictions += await queue.run(service.predictor.predict, rows[start : start + size])
        except DataError as error:
            if error.row is None or start == 0:
                raise
            raise DataError(error.reason, column=error.column, row=error.row + start, source=error.source) from None
    return predictions


async def _predict_table(service: Service, table: Any, body_bytes: int) -> Any:
    """Predictions of an uploaded table, in chunks as `_predict_records` makes them (its rows keep their numbers)."""
    import pandas as pd

    from deepwright.data.io import Table

    frame = table.frame
    size = service.queue.chunk_size(len(frame), body_bytes)
    parts = []
    for start in range(0, len(frame), size):
        chunk = Table(frame.iloc[start : start + size], table.source, table.base_dir)
        parts.append(await service.queue.run(service.predictor.predict, chunk))
    return pd.concat(parts) if len(parts) > 1 else parts[0]


def add_generate_route(app: FastAPI, service: Service) -> None:
    settings = service.settings

    @app.post("/generate", summary="Generate text", openapi_extra=generate_openapi())
    async def generate(request: GenerateRequest) -> Response:
        """Continue the prompt; with "stream": true, the text comes as server-sent events ({"text": piece}),
        ending with an 'end' event holding the whole text."""
        if len(request.prompt) > settings.max_prompt_chars:
            return _error(422, [Problem(f"longer than {settings.max_prompt_chars:,} characters", field="prompt")])
        if (request.max_new_tokens or 0) > settings.max_new_tokens:
            return _error(422, [Problem(f"at most {settings.max_new_tokens:,}", field="max_new_tokens")])
        options = request.model_dump(exclude={"prompt", "stream"})
        if options["temperature"] is not None and options["temperature"] < _GREEDY_BELOW:
            options["temperature"] = 0.0

        def start() -> tuple[Iterator[str], str | None]:
            pieces = iter(service.generator.stream(request.prompt, **options))
            return pieces, next(pieces, None)

        admission = service.queue.admitted(1)
        try:
            admission.__enter__()
        except Overloaded as error:
            return _error(error.status, [Problem(str(error))], headers={"retry-after": str(error.retry_after)})
        streaming = False
        try:
            pieces, first = await service.queue.run(start)  # a bad prompt fails here, before anything is sent
            if not request.stream:
                text = [first or ""]
                while True:
                    more, done = await service.queue.run(_take, pieces, _TOKENS_PER_CALL)
                    text.append(more)
                    if done:
                        return _json({"text": "".join(text)})
            streaming = True
            events = _events(service.queue, first, pieces, admission)
            return StreamingResponse(events, media_type="text/event-stream")
        except DeepwrightError as error:
            return _error(422, service.problems_of(error))
        except Overloaded as error:
            return _error(error.status, [Problem(str(error))], headers={"retry-after": str(error.retry_after)})
        finally:
            if not streaming:
                admission.__exit__(None, None, None)


def _take(pieces: Iterator[str], count: int) -> tuple[str, bool]:
    """The next `count` pieces of a generation joined, and whether it has ended."""
    taken = list(itertools.islice(pieces, count))
    return "".join(taken), len(taken) < count


async def _events(
    queue: InferenceQueue, first: str | None, pieces: Iterator[str], admission: Any
) -> AsyncIterator[bytes]:
    """Server-sent events of the generated pieces, each made on the model thread, then the whole text; the
    request's place in the queue is given back when the stream ends, however it ends."""
    try:
        text = []
        piece = first
        while piece is not None:
            text.append(piece)
            yield f"data: {json.dumps({'text': piece})}\n\n".encode()
            piece = await queue.run(next, pieces, None)
        yield f"event: end\ndata: {json.dumps({'text': ''.join(text)})}\n\n".encode()
    finally:
        admission.__exit__(None, None, None)


async def _uploaded(request: Request, kind: str) -> tuple[bytes, str | None]:
    """The CSV bytes of a request and their file name: the body itself (no name), or the multipart field 'file'
    (the only file; a malformed form is the form parser's 400)."""
    if kind != "multipart/form-data":
        return await request.body(), None
    async with request.form(max_files=1, max_fields=10, max_part_size=64 << 10) as form:
        upload = form.get("file")
        if isinstance(upload, str) and upload:  # a part without a file name: its text is the CSV
            return upload.encode(), None
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


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(content), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, problems: list[Problem], headers: dict[str, str] | None = None) -> Response:
    """A 4xx answer: the first problem as the message, and every problem with its field and row."""
    more = len(problems) - 1
    message = str(problems[0]) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    return _json({"error": message, "problems": [problem.to_dict() for problem in problems]}, status, headers)


def _first_line(error: BaseException) -> str:
    """The first line of an error's message, shortened (a parser's can quote a whole line of the upload)."""
    line = (str(error).strip().splitlines() or [""])[0]
    return line if len(line) <= 200 else line[:197] + "…"


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
        """Starlette's refusals as JSON, keeping their headers (a 405's `Allow`)."""
        message = str(error.detail)
        if error.status_code == 405:
            message = f"method {request.method} is not allowed here; allowed: {(error.headers or {}).get('Allow', '')}"
        return _json({"error": message}, error.status_code, error.headers)

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
