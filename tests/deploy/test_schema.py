"""Request schemas from input features: each request type's JSON, nullability, hints, and problems that name
the field."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from deepwright.deploy.predictor import Predictor
from deepwright.deploy.schema import (
    REQUEST_TYPES,
    InputField,
    example_row,
    input_fields,
    output_fields,
    request_adapter,
    validation_problems,
)
from deepwright.registry import FEATURES
from tests.deploy.serving import Served

FIELDS = [
    InputField("age", "number", "number", nullable=True, hints={"example": 40.0}),
    InputField("member", "binary", "label", nullable=False, hints={"example": "yes", "choices": ["no", "yes"]}),
    InputField("mean radius", "number", "number", nullable=False),
    InputField("note", "text", "text", nullable=True),
    InputField("photo", "image", "media", nullable=False),
]
ROW = {"age": 40.0, "member": "yes", "mean radius": 14.2, "note": "fine", "photo": "data:image/png;base64,AAAA"}


def problems(body: object, max_rows: int = 3) -> list:
    with pytest.raises(ValidationError) as caught:
        request_adapter(FIELDS, max_rows).validate_json(json.dumps(body) if not isinstance(body, bytes) else body)
    return validation_problems(caught.value, FIELDS)


def test_every_registered_feature_type_is_servable() -> None:
    for name in FEATURES.names():
        kind = FEATURES.get(name)
        declared = getattr(kind, "request_type", None)
        # undeclared: inline media for a type that reads files, else any JSON value (its preprocessing checks it)
        assert declared is None or declared in REQUEST_TYPES, name
    for name in ("number", "binary", "category", "text", "image"):
        assert getattr(FEATURES.get(name), "request_type", None) in REQUEST_TYPES, name


def test_a_list_field_takes_a_list_or_a_string() -> None:
    fields = [InputField("notes", "sequence", "list", nullable=False)]
    adapter = request_adapter(fields, 2)
    assert adapter.validate_python({"rows": [{"notes": ["C4", 60, 1.5]}]})["rows"][0]["notes"] == ["C4", 60, 1.5]
    assert adapter.validate_python({"rows": [{"notes": "C4 E4"}]})["rows"][0]["notes"] == "C4 E4"
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python({"rows": [{"notes": {"C4": 1}}]})
    [problem] = validation_problems(caught.value, fields)
    assert problem.message == "expected a list of values, or a string of them separated by spaces, got dict"


def test_fields_of_a_model_with_every_input_type(served: Served) -> None:
    fields = {entry.name: entry for entry in input_fields(Predictor.from_bundle(served.bundle).features)}
    assert {name: entry.request_type for name, entry in fields.items()} == {
        "age": "number",
        "city": "label",
        "member": "label",
        "income": "number",
        "review": "text",
        "photo": "media",
    }
    assert fields["photo"].nullable is False  # an image cannot be filled in: its missing strategy is 'error'
    assert fields["age"].nullable is True
    assert sorted(fields["member"].hints["choices"]) == ["no", "yes"]
    assert set(fields["city"].hints["choices"]) == {"Lyon", "Paris", "Nice"}
    assert fields["city"].hints["open_choices"] is True
    assert fields["photo"].hints["example"].startswith("data:image/png;base64,")
    assert "one of" in fields["member"].description and "known values" in fields["city"].description


def test_the_example_row_validates_and_predicts(served: Served) -> None:
    predictor = Predictor.from_bundle(served.bundle)
    fields = input_fields(predictor.features)
    row = example_row(fields)
    request = request_adapter(fields, 10).validate_python({"rows": [row]})
    assert predictor.predict(request["rows"])[0]["label_prediction"] in ("high", "low")


def test_example_row_is_none_when_a_required_field_has_no_example() -> None:
    assert example_row(FIELDS) is None
    assert example_row([FIELDS[0], FIELDS[3]]) == {"age": 40.0, "note": None}


def test_output_fields_name_the_classes(served: Served) -> None:
    outputs = output_fields(Predictor.from_bundle(served.bundle).features)
    assert outputs == [{"name": "label", "type": "binary", "classes": ["high", "low"]}]


def test_a_valid_body_gives_plain_dicts() -> None:
    rows = request_adapter(FIELDS, 3).validate_json(json.dumps({"rows": [ROW, {**ROW, "age": None}]}))["rows"]
    assert rows[0] == ROW and rows[1]["age"] is None
    assert isinstance(rows[0], dict)
    inline = request_adapter(FIELDS, 3).validate_python({"rows": [{**ROW, "photo": {"base64": "AAAA"}}]})
    assert inline["rows"][0]["photo"] == {"base64": "AAAA"}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"age": "40"}, "age", "expected a finite number, got '40'"),
        ({"age": True}, "age", "expected a finite number"),
        ({"mean radius": None}, "mean radius", "expected a finite number, got None"),
        ({"member": [1]}, "member", "expected a string, number or boolean, got list"),
        ({"note": 5}, "note", "expected a string, got 5"),
        ({"photo": "/etc/passwd"}, "photo", "the server reads no file paths"),
        ({"photo": "data:image/png,notbase64"}, "photo", "send the file inline"),
        ({"photo": {"base64": 5}}, "photo", "expected a file sent inline"),
        ({"photo": {"url": "x"}}, "photo", "expected a file sent inline"),
    ],
)
def test_a_wrong_type_names_the_field(change: dict, field: str, words: str) -> None:
    [problem] = problems({"rows": [{**ROW, **change}]})
    assert (problem.field, problem.row) == (field, 1)
    assert words in problem.message
    assert str(problem).startswith(f"row 1, field {field!r}: ")


def test_not_a_finite_number() -> None:
    [problem] = problems(
        b'{"rows": [{"age": NaN, "member": "yes", "mean radius": 1, "note": "", "photo": "data:a;base64,"}]}'
    )
    assert problem.field == "age" and "finite number" in problem.message


def test_missing_and_unknown_fields_are_each_named() -> None:
    row = dict(ROW)
    del row["mean radius"]
    row["mean radios"] = 1.0
    found = {(problem.field, problem.message) for problem in problems({"rows": [ROW, row]})}
    assert ("mean radius", "field is missing; give every input field (null for a missing value)") in found
    assert ("mean radios", "unknown field; did you mean 'mean radius'?") in found
    assert all(problem.row == 2 for problem in problems({"rows": [ROW, row]}))


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rows": [ROW] * 4}, "rows", "too many rows; send at most 3 rows per request"),
        ({"rows": ROW}, "rows", "'rows' must be a list of objects"),
        ({"rows": [5]}, None, "a row must be an object"),
        ({"row": [ROW]}, "row", "unknown key 'row'"),
        ([ROW], None, 'the body must be a JSON object {"rows"'),
        ({}, None, 'the body must be a JSON object {"rows"'),
        (b"{rows", None, "the body is not valid JSON"),
    ],
)
def test_a_malformed_body_is_described(body: object, field: str | None, words: str) -> None:
    found = problems(body)
    assert any(problem.field == field and words in problem.message for problem in found), found


def test_a_type_without_a_declaration_takes_any_json_value() -> None:
    loose = [InputField("x", "future", "any", nullable=True)]
    assert request_adapter(loose, 2).validate_python({"rows": [{"x": {"a": [1, 2]}}]})["rows"][0]["x"] == {"a": [1, 2]}
