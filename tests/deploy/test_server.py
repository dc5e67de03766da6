"""The server's routes in-process (FastAPI's TestClient): predictions as JSON and CSV, the model card, the typed
OpenAPI schema, every bad request as a 4xx that names the field (never a 500), the token, and /generate."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from deepwright.config import load_config
from deepwright.deploy.generator import TextGenerator
from deepwright.deploy.predictor import Predictor
from deepwright.deploy.served import ServedModel
from deepwright.deploy.server import create_app
from deepwright.deploy.service import ServerSettings
from deepwright.errors import DataError, DeployError
from tests.deploy.serving import Served
from tests.helpers import TARGET

MAX_ROWS = 20
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def predictor(served: Served) -> Predictor:
    return Predictor.from_bundle(served.bundle)


@pytest.fixture(scope="module")
def client(predictor: Predictor) -> Iterator[TestClient]:
    app = create_app(predictor, ServerSettings(max_rows=MAX_ROWS, max_body_bytes=MAX_BODY))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def csv_of(rows: list[dict]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def assert_names(response, status: int, field: str | None, words: str) -> dict:
    """A refused request: the status, a message with the field's name and `words`, the problem's field."""
    assert response.status_code == status, response.text
    body = response.json()
    assert words in body["error"], body
    if field is not None:
        assert repr(field) in body["error"] or field in body["error"], body
        assert any(problem["field"] == field for problem in body["problems"]), body
    return body


# -- predictions -------------------------------------------------------------------------------------------


def test_one_row(client: TestClient, served: Served, predictor: Predictor) -> None:
    response = client.post("/predict", json={"rows": served.rows[:1]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [predictor.predict(served.rows[0])]}
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-request-id"]) == 16


def test_many_rows(client: TestClient, served: Served, predictor: Predictor) -> None:
    response = client.post("/predict", json={"rows": served.rows[:MAX_ROWS]})
    assert response.status_code == 200
    assert response.json()["predictions"] == predictor.predict(served.rows[:MAX_ROWS])
    assert client.post("/predict", json={"rows": []}).json() == {"predictions": []}


def test_missing_values_where_allowed(client: TestClient, served: Served) -> None:
    row = {**served.rows[0], "age": None, "city": None, "member": None, "review": None}
    assert client.post("/predict", json={"rows": [row]}).status_code == 200


def test_an_image_as_base64_object(client: TestClient, served: Served, predictor: Predictor) -> None:
    row = dict(served.rows[0])
    row["photo"] = {"base64": row["photo"].split(",", 1)[1]}
    response = client.post("/predict", json={"rows": [row]})
    assert response.json()["predictions"] == [predictor.predict(served.rows[0])]


def test_a_csv_body_gives_a_csv_file(client: TestClient, served: Served, predictor: Predictor) -> None:
    response = client.post("/predict", content=csv_of(served.rows[:5]), headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="predictions.csv"'
    returned = pd.read_csv(io.StringIO(response.text))
    expected = pd.DataFrame(predictor.predict(served.rows[:5]))
    assert returned[f"{TARGET}_prediction"].tolist() == expected[f"{TARGET}_prediction"].tolist()
    assert np.allclose(returned[f"{TARGET}_probability"], expected[f"{TARGET}_probability"], atol=1e-6)


def test_a_csv_upload_as_json(client: TestClient, served: Served, predictor: Predictor) -> None:
    rows = [{**row, "extra column": "ignored"} for row in served.rows[:4]]
    response = client.post("/predict?format=json", files={"file": ("my people.csv", csv_of(rows), "text/csv")})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = predictor.predict(served.rows[:4])
    assert [p[f"{TARGET}_prediction"] for p in predictions] == [p[f"{TARGET}_prediction"] for p in expected]
    csv = client.post("/predict", files={"file": ("my people.csv", csv_of(rows), "text/csv")})
    assert csv.headers["content-disposition"] == 'attachment; filename="my_people-predictions.csv"'


def test_json_rows_as_a_csv_file(client: TestClient, served: Served) -> None:
    response = client.post("/predict?format=csv", json={"rows": served.rows[:3]})
    assert response.headers["content-type"].startswith("text/csv")
    assert len(pd.read_csv(io.StringIO(response.text))) == 3


# -- the model card and the schema -------------------------------------------------------------------------


def test_metadata(client: TestClient, served: Served) -> None:
    metadata = client.get("/metadata").json()
    assert metadata["name"] == "people"
    assert metadata["runtime"] == "torch"
    assert [entry["name"] for entry in metadata["inputs"]] == ["age", "city", "member", "income", "review", "photo"]
    assert [entry["type"] for entry in metadata["inputs"]] == [
        "number",
        "category",
        "binary",
        "number",
        "text",
        "image",
    ]
    assert metadata["outputs"] == [
        {
            "name": TARGET,
            "type": "binary",
            "classes": ["high", "low"],
            "columns": [f"{TARGET}_prediction", f"{TARGET}_probability"],
        }
    ]
    assert set(metadata["metrics"]) == {"validation", "test"}
    assert "accuracy" in metadata["metrics"]["test"][TARGET]
    assert "learning_curves.png" in metadata["plots"]
    assert metadata["versions"]["bundle"]["deepwright"] and metadata["versions"]["server"]["torch"]
    assert metadata["limits"]["max_rows"] == MAX_ROWS
    assert (metadata["can_predict"], metadata["can_generate"], metadata["needs_token"]) == (True, False, False)
    assert client.post("/predict", json={"rows": [metadata["example"]]}).status_code == 200


def test_openapi_types_and_documents_every_field(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    row = schema["components"]["schemas"]["Row"]
    assert row["required"] == ["age", "city", "member", "income", "review", "photo"]
    assert row["additionalProperties"] is False
    properties = row["properties"]
    assert {"type": "number"} in properties["age"]["anyOf"] and {"type": "null"} in properties["age"]["anyOf"]
    assert {"type": "boolean"} in properties["member"]["anyOf"]
    assert {"type": "string"} in properties["review"]["anyOf"]
    assert {"$ref": "#/components/schemas/InlineFile"} in properties["photo"]["anyOf"]
    assert {"type": "null"} not in properties["photo"]["anyOf"]
    assert all(properties[name]["description"] for name in properties)
    assert properties["city"]["examples"] == ["Lyon"] or properties["city"]["examples"][0] in ("Paris", "Nice")
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert {"text/csv", "multipart/form-data"} <= set(body)
    assert schema["components"]["schemas"]["PredictRequest"]["properties"]["rows"]["maxItems"] == MAX_ROWS
    assert "/generate" not in schema["paths"]


def test_health(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "people"
    assert health["model_calls"] >= 0


def test_plots(client: TestClient) -> None:
    response = client.get("/plots/learning_curves.png")
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
    for name in ("nothing.png", "..%2Fconfig.json", "../config.json"):
        assert client.get(f"/plots/{name}").status_code == 404


def test_the_page_and_its_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/secret.py").status_code == 404
    assert client.get("/docs").status_code == 404  # Swagger UI would load its scripts from a CDN


# -- bad requests: 4xx naming the field, never 500 ---------------------------------------------------------


def change(served: Served, **values: object) -> dict:
    return {"rows": [{**served.rows[0], **values}]}


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"age": "forty"}, "age", "expected a finite number, got 'forty'"),
        ({"income": [3000]}, "income", "expected a finite number"),
        ({"income": 1e300}, "income", "value 1e+300 is too large: the model computes in float32"),
        ({"member": {"yes": 1}}, "member", "expected a string, number or boolean"),
        ({"review": 12}, "review", "expected a string, got 12"),
        ({"photo": None}, "photo", "expected a file sent inline"),
        ({"photo": "/etc/hostname"}, "photo", "the server reads no file paths"),
        ({"photo": "data:image/png;base64,!!!"}, "photo", "not valid base64"),
        (
            {"photo": "data:image/png;base64," + base64.b64encode(b"not an image").decode()},
            "photo",
            "not a readable image",
        ),
        ({"agee": 40}, "agee", "unknown field; did you mean 'age'?"),
    ],
)
def test_a_bad_field(client: TestClient, served: Served, values: dict, field: str, words: str) -> None:
    body = assert_names(client.post("/predict", json=change(served, **values)), 422, field, words)
    assert all(problem["row"] == 1 for problem in body["problems"])


def test_a_missing_field(client: TestClient, served: Served) -> None:
    row = dict(served.rows[0])
    del row["city"]
    assert_names(client.post("/predict", json={"rows": [served.rows[1], row]}), 422, "city", "field is missing")


def test_a_bad_row_among_many_names_its_row(client: TestClient, served: Served) -> None:
    rows = [*served.rows[:3], {**served.rows[3], "photo": "data:image/png;base64,AAAA"}]
    body = assert_names(client.post("/predict", json={"rows": rows}), 422, "photo", "not a readable image")
    assert body["problems"][0]["row"] == 4


def test_not_a_finite_number(client: TestClient, served: Served) -> None:
    body = json.dumps(change(served)).replace('"age": ', '"age": NaN, "x": ', 1).replace(', "x": ', ', "ignored": ', 1)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "age" in response.json()["error"]


def test_too_many_rows(client: TestClient, served: Served) -> None:
    assert_names(client.post("/predict", json={"rows": served.rows[: MAX_ROWS + 1]}), 422, "rows", "too many rows")
    csv = csv_of(served.rows[:1] * (MAX_ROWS + 1))
    response = client.post("/predict", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 422 and f"send at most {MAX_ROWS} rows" in response.json()["error"]


def test_a_body_over_the_size_limit(client: TestClient, served: Served) -> None:
    big = {"rows": [{**served.rows[0], "review": "word " * (MAX_BODY // 4)}]}
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert f"limit of {MAX_BODY:,} bytes" in response.json()["error"] and "--max-body-mb" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"rows": ['
        for _ in range(MAX_BODY // 1000 + 1):
            yield b" " * 1000
        yield b"]}"

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"", 'the body must be a JSON object {"rows"'),
        (b"[1, 2]", 'the body must be a JSON object {"rows"'),
        (b'{"rows": {"age": 1}}', "'rows' must be a list of objects"),
        (b'{"rows": [1]}', "a row must be an object"),
    ],
)
def test_a_malformed_body(client: TestClient, content: bytes, words: str) -> None:
    response = client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert words in response.json()["error"]


def test_bad_csv_uploads(client: TestClient, served: Served) -> None:
    no_city = pd.DataFrame(served.rows[:2]).drop(columns=["city"]).to_csv(index=False).encode()
    response = client.post("/predict", content=no_city, headers={"content-type": "text/csv"})
    assert response.status_code == 422 and "'city' not found" in response.json()["error"]
    paths = csv_of([{**served.rows[0], "photo": "/etc/hostname"}])
    assert_names(
        client.post("/predict", content=paths, headers={"content-type": "text/csv"}), 422, "photo", "reads no paths"
    )
    bad_number = csv_of([served.rows[0], {**served.rows[1], "age": "old"}])
    body = assert_names(
        client.post("/predict", content=bad_number, headers={"content-type": "text/csv"}), 422, "age", "not a number"
    )
    assert body["problems"][0]["row"] == 2
    assert client.post("/predict", content=b"", headers={"content-type": "text/csv"}).status_code == 422
    no_file = client.post("/predict", data={"other": "x"}, files={"other file": ("a.csv", b"a\n1\n")})
    assert_names(no_file, 422, "file", "form field 'file'")


def test_unsupported_content_type_and_format(client: TestClient, served: Served) -> None:
    response = client.post("/predict", content=b"<rows/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415 and "application/json, text/csv" in response.json()["error"]
    assert_names(
        client.post("/predict?format=xml", json={"rows": served.rows[:1]}), 422, "format", "choices: json, csv"
    )
    assert client.get("/predict").status_code == 405


def test_garbage_never_gets_a_500(client: TestClient, served: Served) -> None:
    rng = np.random.default_rng(0)
    values = [None, True, 0, -1.5, 1e308, "", "x" * 300, [], {}, [1, "a"], {"base64": ""}, "data:,", "data:;base64,"]
    fields = list(served.rows[0])
    for _ in range(60):
        row = dict(served.rows[int(rng.integers(len(served.rows)))])
        for field in rng.choice(fields, size=int(rng.integers(1, 4)), replace=False):
            row[str(field)] = values[int(rng.integers(len(values)))]
        response = client.post("/predict", json={"rows": [row]})
        assert response.status_code in (200, 422), (row, response.text)


# -- the token ---------------------------------------------------------------------------------------------


def test_token(predictor: Predictor, served: Served) -> None:
    app = create_app(predictor, ServerSettings(token="s3cret"))
    with TestClient(app) as client:
        for path in ("/metadata", "/openapi.json", "/plots/learning_curves.png"):
            assert client.get(path).status_code == 401
        missing = client.post("/predict", json={"rows": served.rows[:1]})
        assert missing.status_code == 401 and "missing bearer token" in missing.json()["error"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/predict", json={"rows": served.rows[:1]}, headers={"authorization": "Bearer guess"})
        assert wrong.status_code == 401 and "invalid bearer token" in wrong.json()["error"]
        right = client.post("/predict", json={"rows": served.rows[:1]}, headers={"authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert client.get("/metadata", headers={"authorization": "Bearer s3cret"}).json()["needs_token"] is True
        for path in ("/", "/health", "/static/app.js"):  # the page asks for the token itself
            assert client.get(path).status_code == 200


# -- errors inside the model -------------------------------------------------------------------------------


def test_a_bug_is_a_500_with_a_message_not_a_traceback(predictor: Predictor, served: Served) -> None:
    app = create_app(predictor, ServerSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        original = predictor.runtime
        predictor.runtime = lambda arrays: 1 / 0
        try:
            response = client.post("/predict", json={"rows": served.rows[:2]}, headers={"x-request-id": "trace-me"})
        finally:
            predictor.runtime = original
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; see the server log for request trace-me"}
    assert response.headers["x-request-id"] == "trace-me"


def test_a_model_that_cannot_predict_its_example_does_not_start(predictor: Predictor) -> None:
    def refuse(rows: object) -> None:
        raise DataError("broken preprocessing state", column="city")

    broken = Predictor(predictor.config, predictor.features, predictor.model, bundle=predictor.bundle)
    broken.predict = refuse
    with pytest.raises(Exception, match=r"cannot predict its own example row.*broken preprocessing"):
        create_app(broken)


# -- /generate ---------------------------------------------------------------------------------------------


class EchoGenerator:
    """A stand-in language model: the prompt's words back, one per piece (a prompt with '!' is refused)."""

    model_type = "lm"
    can_predict = False
    can_generate = True
    config = load_config({"model_type": "lm"})
    metrics: ClassVar[dict] = {"test": {"perplexity": 3.5}}
    bundle = None
    runtime_name = "torch"

    def predict(self, rows: object) -> None:
        raise DataError("a language model writes text; use /generate")

    def stream(self, prompt: str, *, max_new_tokens: int | None, **options: object) -> Iterator[str]:
        if "!" in prompt:
            raise DataError("'!' is not in the vocabulary", column="prompt")
        for word in prompt.split()[: max_new_tokens or 100]:
            yield f"{word} "


def test_generate_is_only_there_for_language_models(client: TestClient) -> None:
    assert client.post("/generate", json={"prompt": "hi"}).status_code == 404


def test_generate(predictor: Predictor) -> None:
    app = create_app(EchoGenerator(), ServerSettings(max_new_tokens=50), name="echo")
    with TestClient(app) as client:
        assert client.post("/generate", json={"prompt": "one two three"}).json() == {"text": "one two three "}
        streamed = client.post("/generate", json={"prompt": "one two", "stream": True, "max_new_tokens": 5})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = [event for event in streamed.text.split("\n\n") if event]
        assert events == [
            'data: {"text": "one "}',
            'data: {"text": "two "}',
            'event: end\ndata: {"text": "one two "}',
        ]
        refused = client.post("/generate", json={"prompt": "hi!"})
        assert refused.status_code == 422 and "'!' is not in the vocabulary" in refused.json()["error"]
        assert_names(
            client.post("/generate", json={"prompt": "a", "max_new_tokens": 51}), 422, "max_new_tokens", "at most 50"
        )
        assert_names(
            client.post("/generate", json={"prompt": "a", "temperature": 0}), 422, "temperature", "greater than 0"
        )
        assert_names(client.post("/generate", json={"prompt": "a", "top": 3}), 422, "top", "Extra inputs")
        assert client.post("/predict", json={"rows": []}).status_code == 404
        metadata = client.get("/metadata").json()
        assert (metadata["can_predict"], metadata["can_generate"], metadata["model_type"]) == (False, True, "lm")
        assert (metadata["name"], metadata["metrics"]) == ("echo", EchoGenerator.metrics)


def tiny_generator() -> TextGenerator:
    """The real `TextGenerator` over a tiny untrained GPT and a character tokenizer (not loaded from a bundle)."""
    from deepwright.features.tokenization import train_tokenizer
    from deepwright.models.gpt import GPT

    config = load_config(
        {"model_type": "lm", "tokenizer": {"type": "char"}, "model": {"layers": 1, "heads": 1, "dim": 8}}
    )
    tokenizer = train_tokenizer(config.tokenizer, ["to be or not to be"])
    return TextGenerator(config, tokenizer, GPT.from_options(config.model, tokenizer.get_vocab_size()))


def test_generate_with_a_language_model() -> None:
    """The real `TextGenerator` (a tiny untrained GPT): what it streams is what it returns whole, seed for seed."""
    generator = tiny_generator()
    config = generator.config
    with TestClient(create_app(generator, name="tiny")) as client:
        options = {"prompt": "to be", "max_new_tokens": 12, "seed": 3}
        whole = client.post("/generate", json=options).json()["text"]
        streamed = client.post("/generate", json={**options, "stream": True}).text
        metadata = client.get("/metadata").json()
    events = [event for event in streamed.split("\n\n") if event]
    pieces = [json.loads(event.removeprefix("data: "))["text"] for event in events[:-1]]
    assert "".join(pieces) == whole and 1 <= len(whole) <= 12
    assert events[-1] == f"event: end\ndata: {json.dumps({'text': whole})}"
    assert metadata["generation"]["max_new_tokens"] == config.generation.max_new_tokens


SERVED_MODEL = [name for name in vars(ServedModel) if not name.startswith("_")]


def test_every_kind_of_model_declares_what_the_server_asks(
    predictor: Predictor, tmp_path: Path, no_plots: None
) -> None:
    import deepwright as dp
    from tests.pipelines.test_forecast import config, series

    forecast = dp.Pipeline.from_config(config())
    forecast.fit(series(), output_dir=tmp_path, progress=False)
    assert len(SERVED_MODEL) == 8  # model_type, can_predict, can_generate, config, metrics, bundle, runtime_name…
    kinds = {"ecd": (predictor, True, False), "forecast": (forecast.predictor, False, False)}
    kinds["lm"] = (tiny_generator(), False, True)
    for kind, (model, can_predict, can_generate) in kinds.items():
        assert [name for name in SERVED_MODEL if not hasattr(model, name)] == [], kind
        assert (model.model_type, model.runtime_name, model.can_predict, model.can_generate) == (
            kind,
            "torch",
            can_predict,
            can_generate,
        )
    assert predictor.bundle is not None and kinds["lm"][0].bundle is None


def test_a_forecast_is_refused_with_a_clear_error(tmp_path: Path, no_plots: None) -> None:
    import deepwright as dp
    from tests.pipelines.test_forecast import config, series

    result = dp.Pipeline.from_config(config()).fit(series(), output_dir=tmp_path, run_name="sales", progress=False)
    with pytest.raises(DeployError, match=r"^sales: a model of model_type 'forecast' cannot be served; .*predict'"):
        create_app(dp.load(result.bundle_dir).predictor)
