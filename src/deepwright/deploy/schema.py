"""Request schemas from a model's input features: the JSON each field takes, the validator of `/predict` bodies,
readable validation problems, and the metadata the web page builds its form from.

Each input feature type declares `request_type` (see the contract in `deepwright.features.base`), the kind of JSON
value a request gives for it:

    number   a JSON number (no NaN or infinity)
    label    a string, number or boolean: a value seen in training (binary, category)
    text     a string
    list     a list of values (strings or numbers), or one string of them separated by spaces (sequences, series)
    media    a file sent inline: a `data:` URL (`data:image/png;base64,…`) or {"base64": "…"}; the server reads
             no paths
    any      (the default) any JSON value, checked by the feature's own preprocessing

Its `request_hints()` → {"example": value, "choices": [...], "open_choices": bool, "accept": "image/*", …}
document the field and fill the web page's form. A field is nullable (null: a missing value, filled as the
feature's `missing` option says) when `accepts_missing()`: by default, unless its missing strategy is `error`.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(REQUEST_TYPES["number"].annotation).validate_python(2)
2.0
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, JsonValue, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

__all__ = [
    "REQUEST_TYPES",
    "InputField",
    "Problem",
    "RequestType",
    "example_row",
    "input_fields",
    "output_fields",
    "request_adapter",
    "validation_problems",
]

MAX_CHOICES_SHOWN = 200  # values listed per field in the metadata; a vocabulary can hold thousands


@dataclass(frozen=True)
class RequestType:
    """The JSON a request field of this kind takes: its pydantic annotation, and how messages name it."""

    annotation: Any
    expected: str


class InlineFile(TypedDict):
    """A file sent inline as {"base64": "<base64 text>"}."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    base64: Annotated[str, Strict()]


def _inline_url(value: str) -> str:
    header, comma, _ = value.partition(",")
    if not value.startswith("data:") or not comma or not header.endswith(";base64"):
        raise ValueError(
            'send the file inline as "data:<type>;base64,<payload>" or {"base64": "<payload>"}; '
            "the server reads no file paths"
        )
    return value


REQUEST_TYPES: dict[str, RequestType] = {
    "number": RequestType(Annotated[float, Strict()], "a finite number"),  # finite: the row's allow_inf_nan
    "label": RequestType(
        Annotated[str, Strict()] | Annotated[bool, Strict()] | Annotated[int, Strict()] | Annotated[float, Strict()],
        "a string, number or boolean",
    ),
    "text": RequestType(Annotated[str, Strict()], "a string"),
    "list": RequestType(
        Annotated[str, Strict()]
        | list[Annotated[str, Strict()] | Annotated[int, Strict()] | Annotated[float, Strict()]],
        "a list of values, or a string of them separated by spaces",
    ),
    "media": RequestType(
        Annotated[str, Strict(), AfterValidator(_inline_url)] | InlineFile,
        'a file sent inline: "data:<type>;base64,<payload>" or {"base64": "<payload>"}',
    ),
    "any": RequestType(JsonValue, "a JSON value"),
}


@dataclass(frozen=True)
class InputField:
    """One input column as a request field."""

    name: str
    feature_type: str
    request_type: str
    nullable: bool
    hints: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """One or two sentences for the API documentation."""
        words = [f"{self.feature_type} input; {REQUEST_TYPES[self.request_type].expected}"]
        choices = self.hints.get("choices")
        if choices:
            shown = ", ".join(repr(choice) for choice in choices[:12]) + (", …" if len(choices) > 12 else "")
            words.append(("known values: " if self.hints.get("open_choices") else "one of: ") + shown)
            if self.hints.get("open_choices"):
                words.append("other values count as unknown")
        if self.nullable:
            words.append("null for a missing value")
        return "; ".join(words) + "."

    def metadata(self) -> dict[str, Any]:
        """What the web page needs to draw this field."""
        hints = dict(self.hints)
        choices = hints.pop("choices", None)
        entry = {
            "name": self.name,
            "type": self.feature_type,
            "request_type": self.request_type,
            "nullable": self.nullable,
            "description": self.description,
            **hints,
        }
        if choices is not None:
            entry["choices"] = choices[:MAX_CHOICES_SHOWN]
            entry["more_choices"] = max(0, len(choices) - MAX_CHOICES_SHOWN)
        return entry


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the row (1-based) and field it concerns, when it concerns one."""

    message: str
    field: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON for an error response."""
        return {"message": self.message, "field": self.field, "row": self.row}


def input_fields(features: Any) -> list[InputField]:
    """The request fields of a fitted `FeatureSet`'s inputs, in config order."""
    fields = []
    for feature in features.inputs:
        kind = feature.request_type
        if kind not in REQUEST_TYPES:
            raise ValueError(f"feature type {feature.options.type!r} declares unknown request_type {kind!r}")
        fields.append(
            InputField(feature.name, feature.options.type, kind, feature.accepts_missing(), feature.request_hints())
        )
    return fields


def output_fields(features: Any) -> list[dict[str, Any]]:
    """Each output: its name, type and, for classifiers, its classes."""
    outputs = []
    for feature in features.outputs:
        entry: dict[str, Any] = {"name": feature.name, "type": feature.options.type}
        if feature.labels_ is not None:
            entry["classes"] = list(feature.labels_)
        outputs.append(entry)
    return outputs


def request_adapter(fields: list[InputField], max_rows: int) -> TypeAdapter:
    """The validator of a `/predict` JSON body {"rows": [{field: value, …}, …]} (at most `max_rows` rows)."""
    annotations = {}
    for entry in fields:
        annotation = REQUEST_TYPES[entry.request_type].annotation
        if entry.nullable:
            annotation = annotation | None
        extra = {"examples": [entry.hints["example"]]} if entry.hints.get("example") is not None else {}
        annotations[entry.name] = Annotated[annotation, Field(description=entry.description, **extra)]
    row = TypedDict("Row", annotations)  # functional form: column names may hold spaces and dots
    # allow_inf_nan here rather than on each number field: a field constraint takes pydantic's slower float path
    row.__pydantic_config__ = ConfigDict(extra="forbid", title="Row", allow_inf_nan=False)
    request = TypedDict(  # noqa: UP013 (the row type and the limit are only known here)
        "PredictRequest",
        {"rows": Annotated[list[row], Field(max_length=max_rows, description=f"the rows to predict (≤ {max_rows})")]},
    )
    request.__pydantic_config__ = ConfigDict(extra="forbid", title="PredictRequest")
    return TypeAdapter(request)


def example_row(fields: list[InputField]) -> dict[str, Any] | None:
    """A request row from the fields' examples (null where a nullable field has none), or None when a field
    that cannot be null has no example."""
    row = {}
    for entry in fields:
        example = entry.hints.get("example")
        if example is None and not entry.nullable:
            return None
        row[entry.name] = example
    return row


def validation_problems(error: ValidationError, fields: list[InputField]) -> list[Problem]:
    """A pydantic error on a `/predict` body as one problem per field (a union's alternatives merged)."""
    kinds = {entry.name: entry.request_type for entry in fields}
    problems: dict[tuple, Problem] = {}
    for issue in error.errors(include_url=False):
        location = issue["loc"]
        if issue["type"] == "json_invalid":
            return [Problem(f"the body is not valid JSON ({issue['msg'].removeprefix('Invalid JSON: ')})")]
        if location[:1] != ("rows",) or len(location) < 3:
            problems.setdefault(location[:2], _body_problem(issue))
        elif (location[1], location[2]) not in problems:
            problems[location[1], location[2]] = _field_problem(issue, kinds)
    return list(problems.values())


def _body_problem(issue: dict[str, Any]) -> Problem:
    """A problem with the body's shape rather than with one field."""
    location, kind = issue["loc"], issue["type"]
    if location == ("rows",) and kind == "too_long":
        return Problem(f"too many rows; send at most {issue['ctx']['max_length']} rows per request", field="rows")
    if location == ("rows",) and kind != "missing":
        return Problem("'rows' must be a list of objects, one per row", field="rows")
    if len(location) == 2:
        return Problem("a row must be an object of field: value", row=location[1] + 1)
    if kind == "extra_forbidden":
        return Problem(f"unknown key {location[0]!r}; the body holds only 'rows'", field=str(location[0]))
    return Problem('the body must be a JSON object {"rows": [{field: value, …}, …]}')


def _field_problem(issue: dict[str, Any], kinds: dict[str, str]) -> Problem:
    """A problem with one field of one row."""
    row, name, kind = issue["loc"][1] + 1, str(issue["loc"][2]), issue["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(name, list(kinds), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the fields are {', '.join(map(repr, kinds))}"
        return Problem(f"unknown field; {hint}", field=name, row=row)
    if kind == "missing":
        return Problem("field is missing; give every input field (null for a missing value)", field=name, row=row)
    if kind == "value_error":
        return Problem(issue["msg"].removeprefix("Value error, "), field=name, row=row)
    received = issue.get("input")
    shown = type(received).__name__ if isinstance(received, (dict, list)) else repr(received)
    shown = shown if len(shown) <= 60 else shown[:57] + "…"
    return Problem(f"expected {REQUEST_TYPES[kinds.get(name, 'any')].expected}, got {shown}", field=name, row=row)
