"""The web page in a real browser: Debian's chromium driven by Playwright, against a real server. The model card
shows, the form built from /metadata predicts, a bad file is reported beside its field, and a CSV upload gives a
downloadable predictions file. Skipped where chromium or Playwright is not installed (`.ci/run` installs both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from deepwright.deploy.predictor import Predictor
from tests.deploy.serving import LiveServer, Served
from tests.helpers import TARGET

CHROMIUM = Path("/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no browser at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: failed.append(str(error)))
    page.goto(live_server.url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    context.close()
    assert failed == []  # no script error, and nothing fetched that failed (nothing outside the server either)


def test_the_model_card(page: Any) -> None:
    assert page.title() == "deepwright: people"
    assert page.text_content("#title") == "people"
    inputs = page.locator("#inputs-table tbody tr")
    assert inputs.count() == 6
    assert "number" in inputs.nth(0).inner_text() and "image" in inputs.nth(5).inner_text()
    assert "high, low" in page.locator("#outputs-table tbody").inner_text()
    metrics = page.locator("#metrics-table").inner_text()
    assert "label accuracy" in metrics and "validation" in metrics and "test" in metrics
    page.wait_for_function("[...document.querySelectorAll('#plots img')].every(image => image.naturalWidth > 0)")
    assert page.locator("#plots img").count() >= 2
    assert "deepwright" in page.text_content("#versions")


def test_the_form_predicts_one_row(page: Any, served: Served, tmp_path: Path) -> None:
    image = served.frame["photo"].iloc[3]
    page.fill("#input-0", "52")  # age
    page.fill("#input-1", "Lyon")  # city: free text with the known values offered
    page.select_option("#input-2", label="yes")  # member: one of two
    page.fill("#input-3", "3100")  # income
    page.fill("#input-4", "great good")  # review
    page.set_input_files("#input-5", image)  # photo
    page.click("#predict-button")
    page.wait_for_selector("#result .prediction")
    row = {"age": 52.0, "city": "Lyon", "member": "yes", "income": 3100.0, "review": "great good", "photo": image}
    expected = Predictor.from_bundle(served.bundle).predict(row)
    assert page.text_content("#result .prediction") == expected[f"{TARGET}_prediction"]
    shown = page.locator("#result .probability").first.text_content()
    assert (
        shown == f"{1 - expected[f'{TARGET}_probability']:.3f}" or shown == f"{expected[f'{TARGET}_probability']:.3f}"
    )
    assert page.locator("#predict-error").is_hidden()


def test_a_bad_file_is_reported_beside_its_field(page: Any, tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are words, not pixels")
    page.set_input_files("#input-5", str(not_an_image))
    page.click("#predict-button")
    page.wait_for_selector("#predict-error:not([hidden])")
    assert "field 'photo'" in page.text_content("#predict-error")
    assert "not a readable image" in page.text_content("#error-5")
    assert page.locator("#result .prediction").count() == 0


def test_a_csv_upload_gives_a_predictions_file(page: Any, served: Served, tmp_path: Path) -> None:
    upload = tmp_path / "visitors.csv"
    frame = pd.DataFrame(served.rows[:12])
    frame.to_csv(upload, index=False)
    page.set_input_files("#csv-file", str(upload))
    page.click("#csv-button")
    page.wait_for_selector("#csv-download:not([hidden])")
    assert page.text_content("#csv-status") == "12 rows predicted"
    assert page.locator("#csv-preview tbody tr").count() == 10  # a preview of the first rows
    with page.expect_download() as download:
        page.click("#csv-download")
    assert download.value.suggested_filename == "visitors-predictions.csv"
    saved = tmp_path / "saved.csv"
    download.value.save_as(saved)
    predictions = pd.read_csv(saved)
    expected = pd.DataFrame(Predictor.from_bundle(served.bundle).predict(served.rows[:12]))
    assert predictions[f"{TARGET}_prediction"].tolist() == expected[f"{TARGET}_prediction"].tolist()
    assert (predictions[f"{TARGET}_probability"] - expected[f"{TARGET}_probability"]).abs().max() < 1e-9


def test_a_bad_csv_is_reported(page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "wrong.csv"
    upload.write_text("name,colour\nAda,blue\n")
    page.set_input_files("#csv-file", str(upload))
    page.click("#csv-button")
    page.wait_for_selector("#csv-status .error")
    assert "input columns 'age', 'city'" in page.text_content("#csv-status")
    assert page.locator("#csv-download").is_hidden()


def test_nothing_is_loaded_from_elsewhere(live_server: LiveServer) -> None:
    import httpx

    page = httpx.get(live_server.url + "/", timeout=30).text
    script = httpx.get(live_server.url + "/static/app.js", timeout=30).text
    for text in (page, script):
        assert "https://" not in text and "http://" not in text and "//cdn" not in text
