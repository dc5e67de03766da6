"""The server's OpenAPI document: FastAPI's, with the request schema built from the input features, the answers
of `/predict` and `/generate` as they are (JSON or CSV, JSON or server-sent events), and every refusal as it is
sent: `{"error": message, "problems": [...]}` with its status (4xx), and `Retry-After` on a 429 or 503.

`deepwright.deploy.server.create_app` installs it with `customise_openapi`; `tests/deploy/test_schemathesis.py`
checks the live server against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from deepwright.deploy.service import Service

__all__ = ["ERROR_SCHEMA", "customise_openapi", "generate_openapi", "predict_openapi"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what is wrong, naming the row and field"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "row": {"type": ["integer", "null"]},
                },
                "required": ["message", "field", "row"],
            },
        },
    },
    "required": ["error"],
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_RETRY = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
_REFUSALS = {
    "4XX": {"description": "a refused request; the message names the field", "content": _ERROR},
    "422": {"description": "a field is missing, unknown or of the wrong type; the message names it", "content": _ERROR},
    "429": {"description": "the server's queue is full", "content": _ERROR, "headers": _RETRY},
    "503": {"description": "the server is stopping", "content": _ERROR, "headers": _RETRY},
}


def customise_openapi(app: FastAPI, service: Service) -> None:
    """Add the request schema generated from the input features to the OpenAPI components, and document every
    operation's refusals as the server sends them."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's own 422 body, never sent here
                components.pop(name, None)
            components["Error"] = ERROR_SCHEMA
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
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.setdefault("responses", {}).update(_REFUSALS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def predict_openapi() -> dict[str, Any]:
    """The OpenAPI of `/predict` that FastAPI cannot infer: its query parameter, bodies and answers."""
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
                "description": "one prediction per row, in order",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "413": {"description": "a body, or one field, over the server's limit", "content": _ERROR},
        },
    }


def generate_openapi() -> dict[str, Any]:
    """The answers of `/generate`: the whole text as JSON, or server-sent events."""
    return {
        "responses": {
            "200": {
                "description": 'the text: {"text": …}, or with "stream": true, events of its pieces',
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
                    },
                    "text/event-stream": {  # each event: data {"text": piece}, the last 'end' with the whole text
                        "schema": {
                            "type": "object",
                            "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
                            "required": ["data"],
                        }
                    },
                },
            }
        }
    }
