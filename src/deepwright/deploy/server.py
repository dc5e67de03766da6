"""The prediction server: a FastAPI app over a served model, and `serve`, which runs it with uvicorn.

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
predicted in one call. The app loads nothing itself: `create_app` takes a loaded model (a `Predictor` or a
`TextGenerator`: see `deepwright.deploy.served`), so a missing or corrupt bundle stops `deepwright serve` before
it listens. The routes are in `deepwright.deploy.routes`, what they share in `deepwright.deploy.service`.

>>> app = create_app(Predictor.from_bundle("runs/quickstart/model"))   # doctest: +SKIP
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from fastapi import FastAPI

from deepwright.deploy.middleware import AccessLog, BearerToken, BodyLimit
from deepwright.deploy.openapi import customise_openapi
from deepwright.deploy.routes import (
    add_error_handlers,
    add_generate_route,
    add_page_routes,
    add_predict_route,
)
from deepwright.deploy.served import ServedModel
from deepwright.deploy.service import ServerSettings, Service
from deepwright.errors import DeployError
from deepwright.version import __version__

__all__ = ["bind_socket", "create_app", "is_loopback", "serve"]


# -- the app -----------------------------------------------------------------------------------------------


def create_app(model: ServedModel, settings: ServerSettings | None = None, *, name: str | None = None) -> FastAPI:
    """The FastAPI app serving `model`: `/predict` when it can predict rows (a `Predictor`), `/generate` when it
    can write text (a `TextGenerator`); a model that can do neither is refused with a `DeployError`. `name` (by
    default the bundle's) titles the web page."""
    settings = settings or ServerSettings()
    service = Service(model, settings, name)
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
    if model.can_predict:
        add_predict_route(app, service)
    if model.can_generate:
        add_generate_route(app, service)
    add_error_handlers(app)
    customise_openapi(app, service)
    in_flight = max(settings.max_bytes_in_flight, settings.max_body_bytes)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_bytes_in_flight=in_flight)
    if settings.token:
        app.add_middleware(BearerToken, token=settings.token, public=_is_public)
    app.add_middleware(AccessLog)
    return app


def _is_public(path: str) -> bool:
    """Paths anyone may fetch: the health check and the web page's own files (they hold nothing of the model)."""
    return path in ("/", "/health", "/favicon.ico") or path.startswith("/static/")


# -- running -----------------------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, not listening yet (`serve` listens once the model is ready), or a
    `DeployError` saying why it cannot be (the port in use…)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise DeployError(f"port {port!r} is not a port number; choose --port between 1 and 65535")
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


def is_loopback(host: str) -> bool:
    """Whether `host` reaches this machine only: `localhost`, or an address in 127.0.0.0/8 or ::1 (a name that
    may resolve elsewhere counts as beyond it).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    model: ServedModel, settings: ServerSettings, *, sock: socket.socket | None = None, name: str | None = None
) -> None:
    """Run the server until it is stopped by Ctrl+C or SIGTERM, then return: it stops accepting connections,
    lets in-flight requests finish (up to `graceful_timeout_s`), and answers what the inference queue holds."""
    import signal

    import uvicorn

    sock = sock or bind_socket(settings.host, settings.port)
    app = create_app(model, settings, name=name)
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
