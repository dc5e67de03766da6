"""A hostile but fair client, in-process: every request surface (JSON, CSV and multipart bodies, query parameters,
headers, paths, /plots/NAME, /generate options) answers a bad request with a 4xx, never a 5xx; every size and
count is bounded (413 / 429 / 503 with Retry-After); small requests keep answering while a large one runs; and
`serve` refuses options that cannot work before it listens."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from deepwright.deploy.batching import InferenceQueue, Overloaded
from deepwright.deploy.predictor import Predictor
from deepwright.deploy.server import bind_socket, create_app, is_loopback
from deepwright.deploy.service import ServerSettings
from deepwright.errors import ConfigError, DeployError
from tests.deploy.serving import Served
from tests.helpers import Trained, assert_user_error

MAX_TEXT = 1_000


@pytest.fixture(scope="module")
def predictor(served: Served) -> Predictor:
    return Predictor.from_bundle(served.bundle)


@pytest.fixture(scope="module")
def client(predictor: Predictor) -> Iterator[TestClient]:
    settings = ServerSettings(max_rows=50, max_body_bytes=512 * 1024, max_text_chars=MAX_TEXT)
    with TestClient(create_app(predictor, settings), raise_server_exceptions=False) as client:
        yield client


def csv_text(served: Served, rows: int = 2) -> str:
    import pandas as pd

    return pd.DataFrame(served.rows[:rows]).to_csv(index=False)


def assert_refused(response, *statuses: int) -> dict:
    """A 4xx (one of `statuses` when given) with a JSON {"error": message}."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body["error"], str) and body["error"], body
    return body


# -- multipart ---------------------------------------------------------------------------------------------


def test_a_malformed_multipart_upload_is_a_4xx_never_a_500(client: TestClient, served: Served) -> None:
    csv = csv_text(served).encode()
    no_boundary = client.post("/predict", content=b"--x\r\n\r\nabc", headers={"content-type": "multipart/form-data"})
    assert_refused(no_boundary, 400, 422)
    two_files = client.post("/predict", files=[("file", ("a.csv", csv, "text/csv")), ("file", ("b.csv", csv))])
    assert_refused(two_files, 400)
    many_fields = client.post("/predict", data={f"f{i}": "x" for i in range(20)}, files={"file": ("a.csv", csv)})
    assert_refused(many_fields, 400)
    big_field = client.post("/predict", data={"note": "x" * (100 << 10)}, files={"file": ("a.csv", csv)})
    assert_refused(big_field, 400)
    garbage = b"--b\r\nContent-Disposition: form-data\r\n\r\n\x00\xff--b"
    broken = client.post("/predict", content=garbage, headers={"content-type": "multipart/form-data; boundary=b"})
    assert_refused(broken, 400, 422)
    truncated = client.post(
        "/predict", content=b"--b\r\nContent-Dis", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_refused(truncated, 400, 422)


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", '"; rm -rf /', "a\r\nx-evil: 1.csv", "é" * 300, "/abs/path.csv", ".", "", "a\x00b.csv"],
)
def test_any_upload_file_name_is_answered_with_a_safe_download_name(
    client: TestClient, served: Served, filename: str
) -> None:
    response = client.post("/predict", files={"file": (filename, csv_text(served).encode(), "text/csv")})
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    name = disposition.removeprefix('attachment; filename="').removesuffix('"')
    assert name.endswith("predictions.csv") and "/" not in name and "\r" not in disposition and ".." not in name
    assert "x-evil" not in response.headers


# -- CSV bodies --------------------------------------------------------------------------------------------


def test_random_short_csv_bodies_never_get_a_5xx(client: TestClient, served: Served) -> None:
    rng = np.random.default_rng(18)
    header = ",".join(served.rows[0])
    alphabet = list(b',"\r\n\t ;ab1.-\x00\xff\xfe') + list(header.encode())
    statuses = set()
    for length in list(range(0, 12)) + [int(n) for n in rng.integers(12, 400, size=60)]:
        body = bytes(rng.choice(alphabet, size=length)) if rng.random() < 0.5 else header.encode()[:length]
        if rng.random() < 0.5:
            body = header.encode() + b"\n" + body
        response = client.post("/predict", content=body, headers={"content-type": "text/csv"})
        assert response.status_code < 500, (body, response.text)
        statuses.add(response.status_code)
    assert statuses <= {200, 400, 413, 422}


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_csv_line_endings_give_a_result_or_a_4xx(client: TestClient, served: Served, ending: str) -> None:
    text = csv_text(served, 3).replace("\r\n", "\n").replace("\n", ending)
    response = client.post("/predict", content=text.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "body",
    [
        "\ufeffage,city\n1,2\n".encode(),
        b"\xff\xfe" + "age,city\n".encode("utf-16-le"),
        "age,city\n1,caf\xe9\n".encode("latin-1"),
        b'age,city\n"unterminated,1\n',
        b"a,a,a\n1,2,3\n",
        b"\x00" * 64,
        b",,,\n,,,\n",
    ],
)
def test_odd_csv_bytes_get_a_4xx_or_a_result(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "text/csv"})
    assert response.status_code < 500, response.text


# -- JSON bodies, fields and sizes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"rows": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"rows": [{"age": 1e999}]}',
        b'{"rows": [{"age": "\\ud800"}]}',
        b'{"rows": [], "rows": [1]}',
        b"\xff\xfe{}",
        b'{"rows": null}',
        b"1e999999",
    ],
)
def test_odd_json_bodies_get_a_4xx(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 400, 422)


def test_a_string_field_over_its_limit_is_a_413_naming_it(client: TestClient, served: Served) -> None:
    long_row = {**served.rows[0], "review": "good " * MAX_TEXT}
    body = assert_refused(client.post("/predict", json={"rows": [served.rows[1], long_row]}), 413)
    assert body["problems"][0] == {"field": "review", "row": 2, "message": body["problems"][0]["message"]}
    assert "--max-text-chars" in body["error"]
    csv = csv_text(served).replace("good", "good" * (MAX_TEXT // 3), 1).encode()
    assert_refused(client.post("/predict", content=csv, headers={"content-type": "text/csv"}), 413)
    photo = {**served.rows[0], "photo": served.rows[0]["photo"] + "A" * 4 * MAX_TEXT}  # files are not text
    assert client.post("/predict", json={"rows": [photo]}).status_code in (200, 422)


def test_a_large_single_row_is_predicted_like_a_small_one(client: TestClient, served: Served) -> None:
    row = {**served.rows[0], "review": "good " * (MAX_TEXT // 6)}
    padded = b'{"rows": [' + __import__("json").dumps(row).encode() + b"]}" + b" " * (80 << 10)  # > 64 kB body
    response = client.post("/predict", content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == client.post("/predict", json={"rows": [row]}).json()


def test_many_rows_in_chunks_name_the_row_of_an_error(predictor: Predictor, served: Served) -> None:
    settings = ServerSettings(max_rows=40, chunk_rows=7)
    rows = (served.rows * 2)[:40]
    with TestClient(create_app(predictor, settings)) as client:
        response = client.post("/predict", json={"rows": rows})
        assert_same(response.json()["predictions"], predictor.predict(rows))
        bad = [*rows[:30], {**rows[30], "photo": "data:image/png;base64,AAAA"}, *rows[31:]]  # not an image
        body = client.post("/predict", json={"rows": bad}).json()
        assert body["problems"][0]["row"] == 31, body
        csv = client.post("/predict?format=json", content=csv_of(rows), headers={"content-type": "text/csv"})
        assert_same(csv.json()["predictions"], predictor.predict(rows))


def assert_same(predictions: list[dict], expected: list[dict]) -> None:
    """The same labels, and probabilities equal up to float rounding (chunks are matrix products of other sizes)."""
    assert [p["label_prediction"] for p in predictions] == [p["label_prediction"] for p in expected]
    assert np.allclose([p["label_probability"] for p in predictions], [p["label_probability"] for p in expected])


def csv_of(rows: list[dict]) -> bytes:
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False).encode()


# -- headers, query parameters, paths, methods -------------------------------------------------------------


def test_headers_and_query_parameters_never_get_a_5xx(client: TestClient, served: Served) -> None:
    row = {"rows": served.rows[:1]}
    for content_type in (
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 5000,
        "text/csv; charset=no-such-charset",
        "application/json; charset=latin-1",
        "APPLICATION/JSON",
        ";;;",
        "x" * 10_000,
    ):
        response = client.post("/predict", content=b'{"rows": []}', headers={"content-type": content_type})
        assert response.status_code < 500, (content_type, response.text)
    for length in ("abc", "-1", "1e3", " 12"):
        response = client.post("/predict", content=b"{}", headers={"content-length": length})
        assert response.status_code < 500
    for query in ("format=csv&format=xml", "format=", "format=%00", "x=" + "y" * 5000, "format=JSON"):
        assert client.post(f"/predict?{query}", json=row).status_code < 500, query
    assert client.get("/health", headers={"x-request-id": "\x7f" * 100}).status_code == 200


def test_paths_never_reach_a_file_outside_the_bundle(client: TestClient, served: Served) -> None:
    for path in (
        "/plots/..%2F..%2Fmanifest.json",
        "/plots/%2e%2e%2fconfig.json",
        "/plots/" + "a" * 5000,
        "/static/..%2Fserver.py",
        "/static/../routes.py",
        "//etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/plots/learning_curves.png%00.txt",
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
    assert client.get("/plots/learning_curves.png").status_code == 200


def test_head_health_answers_and_every_405_says_what_is_allowed(client: TestClient) -> None:
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""
    for method, path, allowed in (("POST", "/health", "GET"), ("GET", "/predict", "POST"), ("PUT", "/metadata", "GET")):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert allowed in response.headers["allow"]
        assert allowed in response.json()["error"]


def test_the_plots_are_served_as_they_were_when_the_bundle_was_loaded(predictor: Predictor, tmp_path: Path) -> None:
    import shutil

    bundle = Path(shutil.copytree(predictor.bundle.path, tmp_path / "model"))
    loaded = Predictor.from_bundle(bundle)
    with TestClient(create_app(loaded)) as client:
        plot = bundle / "plots" / "learning_curves.png"
        original = plot.read_bytes()
        plot.unlink()
        plot.symlink_to(bundle / "config.json")  # swapped after loading: never served
        assert client.get("/plots/learning_curves.png").content == original


# -- the queue: bounded, and fair to small requests --------------------------------------------------------


def slow(predictor: Predictor, seconds_per_row: float) -> Predictor:
    """A copy of `predictor` whose every call sleeps `seconds_per_row` a row (the GIL is free meanwhile)."""
    copy = Predictor(predictor.config, predictor.features, predictor.model, bundle=predictor.bundle)
    real = copy.predict

    def predict(rows: object) -> object:
        time.sleep(seconds_per_row * max(1, len(rows) if hasattr(rows, "__len__") else 1))
        return real(rows)

    copy.predict = predict
    return copy


def test_small_requests_stay_fast_while_a_large_one_runs(predictor: Predictor, served: Served) -> None:
    model = slow(predictor, 0.002)  # 1,000 rows: 2 s of model time, in chunks of 50 rows (0.1 s)
    settings = ServerSettings(max_rows=1_000, chunk_rows=50)
    rows = (served.rows * 17)[:1_000]
    with TestClient(create_app(model, settings)) as client:
        done: dict[str, float] = {}

        def large() -> None:
            started = time.perf_counter()
            assert client.post("/predict", json={"rows": rows}).status_code == 200
            done["large"] = time.perf_counter() - started

        thread = threading.Thread(target=large)
        thread.start()
        time.sleep(0.3)
        latencies = []
        while thread.is_alive() and len(latencies) < 15:
            started = time.perf_counter()
            assert client.post("/predict", json={"rows": served.rows[:1]}).status_code == 200
            latencies.append(time.perf_counter() - started)
        thread.join()
    assert done["large"] >= 1.5 and len(latencies) >= 3, (done, latencies)
    print(f"small requests while a large one ran: max {max(latencies) * 1000:.0f} ms over {len(latencies)}")
    assert max(latencies) < 0.75, latencies  # a chunk or two, never the whole large request


def test_a_full_queue_is_a_429_with_retry_after(predictor: Predictor, served: Served) -> None:
    model = slow(predictor, 0.05)
    settings = ServerSettings(max_rows=20, max_queued_requests=1, max_queued_rows=20)
    with TestClient(create_app(model, settings)) as client:
        thread = threading.Thread(target=lambda: client.post("/predict", json={"rows": served.rows[:20]}))
        thread.start()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["queued_requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = client.post("/predict", json={"rows": served.rows[:2]})
        thread.join()
        health = client.get("/health").json()
    body = assert_refused(refused, 429)
    assert "busy" in body["error"] and 1 <= int(refused.headers["retry-after"]) <= 60
    assert health["refused"] == 1 and health["queued_requests"] == 0 and health["queued_rows"] == 0


def test_the_queue_refuses_past_its_bounds_and_once_stopping() -> None:
    async def scenario() -> None:
        queue = InferenceQueue(lambda rows: rows, max_queued_requests=2, max_queued_rows=10)
        await queue.start()
        with queue.admitted(6), queue.admitted(4):
            with pytest.raises(Overloaded) as full, queue.admitted(1):
                pass
            assert full.value.status == 429 and full.value.retry_after >= 1
        with queue.admitted(10):
            assert queue.queued_rows == 10
        with pytest.raises(Overloaded), queue.admitted(11):
            pass
        await queue.stop()
        with pytest.raises(Overloaded) as stopping, queue.admitted(1):
            pass
        assert stopping.value.status == 503
        with pytest.raises(Overloaded):
            await queue.run(print)

    asyncio.run(scenario())


# -- /generate options -------------------------------------------------------------------------------------


def test_generate_options_at_their_limits_never_get_a_5xx() -> None:
    from tests.deploy.test_server import tiny_generator

    with TestClient(create_app(tiny_generator(), ServerSettings(max_new_tokens=8)), raise_server_exceptions=False) as c:
        for options in (
            {"seed": 2**64},
            {"seed": -(2**63) - 1},
            {"seed": 2**64 - 1, "max_new_tokens": 2},
            {"temperature": 1e-300, "max_new_tokens": 2},
            {"temperature": 1e300, "max_new_tokens": 2},
            {"top_k": 10**12, "max_new_tokens": 2},
            {"top_p": 1e-300, "max_new_tokens": 2},
            {"stop": ["x" * 10_000]},
            {"stop": [""] * 8, "max_new_tokens": 2},
            {"max_new_tokens": 10**30},
        ):
            response = c.post("/generate", json={"prompt": "to be", **options})
            assert response.status_code in (200, 422), (options, response.text)
        for body in (b'{"prompt": "a", "temperature": NaN}', b'{"prompt": "a", "temperature": Infinity}', b"{"):
            response = c.post("/generate", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422, (body, response.text)


# -- serve's options, checked before it listens ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--port", "70000"], "choose --port between 1 and 65535"),
        (["--port", "0"], "choose --port between 1 and 65535"),
        (["--port", "-1"], "choose --port between 1 and 65535"),
        (["--max-body-mb", "nan"], "--max-body-mb must be above 0"),
        (["--max-body-mb", "inf"], "--max-body-mb must be above 0"),
        (["--max-body-mb", "-3"], "--max-body-mb must be above 0"),
        (["--batch-wait-ms", "nan"], "--batch-wait-ms at least 0, both finite"),
        (["--batch-wait-ms", "inf"], "--batch-wait-ms at least 0, both finite"),
    ],
)
def test_serve_refuses_options_before_it_listens(
    trained: Trained, cli, tmp_path: Path, options: list, words: str
) -> None:
    outcome = cli("serve", "--model", trained.result.bundle_dir, *options, cwd=tmp_path)
    assert words in assert_user_error(outcome)


def test_server_settings_refuse_what_cannot_work() -> None:
    for settings in (
        {"port": 65536},
        {"batch_wait_ms": float("nan")},
        {"graceful_timeout_s": float("inf")},
        {"max_rows": 0},
        {"max_queued_rows": 10, "max_rows": 20},
        {"chunk_rows": True},
    ):
        with pytest.raises(ConfigError):
            ServerSettings(**settings)
    with pytest.raises(DeployError, match="between 1 and 65535"):
        bind_socket("127.0.0.1", 70000)


def test_only_loopback_addresses_count_as_this_machine() -> None:
    from deepwright.cli.parser import build_parser

    assert build_parser().parse_args(["serve", "--model", "m"]).host == "127.0.0.1"
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.0.2.1", "example.com", "localhost.evil"))


def test_a_server_beyond_this_machine_without_a_token_warns(
    trained: Trained, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warning, with the listening replaced (tests bind loopback addresses only)."""
    import socket

    from deepwright.deploy import server

    served = []
    monkeypatch.setattr(server, "bind_socket", lambda host, port: socket.socket())
    monkeypatch.setattr(server, "serve", lambda model, settings, sock: served.append(settings.host))
    monkeypatch.setattr("deepwright.cli.commands.configure_server_logs", lambda *args, **options: None)
    outcome = cli("serve", "--model", trained.result.bundle_dir, "--host", "0.0.0.0", cwd=tmp_path)
    assert outcome.returncode == 0 and served == ["0.0.0.0"]
    assert "warning: listening beyond this machine without --token" in outcome.stderr
    outcome = cli("serve", "--model", trained.result.bundle_dir, "--host", "0.0.0.0", "--token", "t", cwd=tmp_path)
    assert "warning" not in outcome.stderr


def test_bodies_held_at_once_are_bounded_with_a_503(predictor: Predictor, served: Served) -> None:
    model = slow(predictor, 0.05)
    settings = ServerSettings(max_rows=20, max_body_bytes=64 << 10, max_bytes_in_flight=64 << 10)
    body = b'{"rows": ' + __import__("json").dumps(served.rows[:20]).encode() + b"}"
    body += b" " * ((40 << 10) - len(body))  # 40 kB: two of them are over the 64 kB in flight
    headers = {"content-type": "application/json"}
    with TestClient(create_app(model, settings)) as client:
        thread = threading.Thread(target=lambda: client.post("/predict", content=body, headers=headers))
        thread.start()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["queued_requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = client.post("/predict", content=body, headers=headers)
        thread.join()
        after = client.post("/predict", content=body, headers=headers)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "try again shortly" in refused.json()["error"]
    assert after.status_code == 200


def test_an_access_log_that_cannot_be_written_is_refused_before_listening(
    trained: Trained, cli, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x")
    for target in (tmp_path / "a-file" / "access.log", tmp_path):
        outcome = cli("serve", "--model", trained.result.bundle_dir, "--access-log", target, cwd=tmp_path)
        assert "--access-log" in assert_user_error(outcome)


def test_an_inline_image_bomb_is_a_422_not_a_500(client: TestClient, served: Served) -> None:
    """A 400-megapixel PNG of half a megabyte: PIL refuses to decode it, and the row is refused by name."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")
    bomb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    body = assert_refused(client.post("/predict", json={"rows": [{**served.rows[0], "photo": bomb}]}), 422)
    assert body["problems"][0]["field"] == "photo"


def test_a_tsv_body_is_read_with_tabs(client: TestClient, served: Served) -> None:
    import pandas as pd

    tsv = pd.DataFrame(served.rows[:3]).to_csv(index=False, sep="\t").encode()
    response = client.post("/predict", content=tsv, headers={"content-type": "text/tab-separated-values"})
    assert response.status_code == 200, response.text
    assert len(response.text.strip().splitlines()) == 4


def test_every_bound_is_in_the_model_card(client: TestClient) -> None:
    limits = client.get("/metadata").json()["limits"]
    assert set(limits) >= {
        "max_rows",
        "max_body_bytes",
        "max_text_chars",
        "max_queued_requests",
        "max_queued_rows",
        "max_bytes_in_flight",
        "chunk_rows",
        "max_prompt_chars",
        "max_new_tokens",
    }
    assert all(isinstance(value, (int, float)) and value >= 0 for value in limits.values())
