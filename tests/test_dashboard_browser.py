"""The dashboard at /ui in a real browser with no network: Debian's Chromium driven by
Playwright (as tests/test_docs_browser.py), against real servers. A fit from an uploaded
CSV, its progress bar, its scores and pictures; a cancel; load, predict a file and the
downloaded CSV; remove after a confirmation; and the token flow with both tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import make_classification

from tests.servers import PROJECT_ROOT, uvicorn_server
from tests.test_docs_browser import CHROMIUM, CHROMIUM_ARGS

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

SCREENSHOT = PROJECT_ROOT / "docs" / "dashboard.png"
TIMEOUT_MS = 30_000
MANAGEMENT, INFERENCE = "dashboard-management-token", "dashboard-inference-token"


PLANS = ["basic", "plus", "pro"]  # a text column: categorical


def write_table(path: Path, with_label: bool = True) -> Path:
    X, y = make_classification(n_samples=2000, n_features=5, random_state=0)
    header = "a,b,c,d,e,plan" + (",label" if with_label else "")
    lines = [
        ",".join(f"{v:.4f}" for v in row)
        + f",{PLANS[i % 3]}"
        + (f",{'yes' if t else 'no'}" if with_label else "")
        for i, (row, t) in enumerate(zip(X, y, strict=True))
    ]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


class Browser:
    """One page, with every console error and every request it made."""

    def __init__(self, playwright: Any, url: str) -> None:
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.requested: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(f"{url}/ui")

    def off_host(self, url: str) -> list[str]:
        return [r for r in self.requested if not r.startswith((url, f"blob:{url}", "data:"))]


@pytest.fixture
def browser_on() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        opened: list[Browser] = []

        def open_page(url: str) -> Browser:
            opened.append(Browser(playwright, url))
            return opened[-1]

        yield open_page
        for browser in opened:
            browser.browser.close()


def fit_from_page(page: Any, table: Path, name: str, hyperparameters: str) -> None:
    page.set_input_files("#fit-file", str(table))
    page.fill("#fit-target", "label")
    page.fill("#fit-name", name)
    page.select_option("#fit-type", "RandomForestClassifier")
    page.fill("#fit-hyperparameters", hyperparameters)
    page.click("#fit-form button[type=submit]")


def progress_until_done(page: Any, name: str) -> list[str]:
    """The values the job's progress bar showed, polled until its row says succeeded."""
    row = page.locator(f'#jobs tr[data-job]:has(td:text-is("{name}"))').first
    seen = []
    deadline = time.monotonic() + 120
    while row.get_attribute("data-state") != "succeeded":
        assert time.monotonic() < deadline, "the fit did not succeed in time"
        seen.append(row.locator("progress").get_attribute("value"))
    seen.append(row.locator("progress").get_attribute("value"))
    return [value for value in seen if value is not None]


def test_fit_cancel_load_predict_and_remove_from_the_page(tmp_path: Path, browser_on: Any) -> None:
    table = write_table(tmp_path / "train.csv")
    rows = write_table(tmp_path / "rows.csv", with_label=False)
    with uvicorn_server(tmp_path / "models") as (url, _), httpx.Client(base_url=url) as api:
        browser = browser_on(url)
        page = browser.page
        page.wait_for_selector("#board:not([hidden])")

        fit_from_page(page, table, "rf", '{"n_estimators": 800}')
        seen = progress_until_done(page, "rf")
        assert any(0 < float(value) < 1 for value in seen), seen  # it rose...
        assert seen[-1] == "1"  # ...to 100%
        model_row = page.locator('#models tr[data-model="rf"]')
        accuracy = model_row.locator("td").nth(6)  # its scores, on the held-out rows
        accuracy.filter(has_text=".").wait_for()
        assert 0.5 < float(accuracy.inner_text()) <= 1
        figure = page.locator('figure[data-pictures="rf"]')
        figure.locator("svg polyline.curve").wait_for()
        counts = [int(c) for c in figure.locator("table.confusion td").all_inner_texts()]
        assert len(counts) == 4 and sum(counts) == 400  # the 20% held out
        importance = figure.locator(".bar.importance .label").all_inner_texts()
        assert importance == list(api.get("/models/rf").json()["validation"]["feature_importance"])
        levels = figure.locator("dl.levels")  # the categorical columns and their levels
        assert levels.locator("dt").all_inner_texts() == ["plan (categorical)"]
        assert levels.locator("dd").all_inner_texts() == [", ".join(PLANS)]

        fit_from_page(page, table, "slow", '{"n_estimators": 20000}')
        slow = page.locator('#jobs tr[data-state="running"]:has(td:text-is("slow"))')
        slow.locator('button[data-action="cancel"]').click()
        page.locator('#jobs tr[data-state="cancelled"]:has(td:text-is("slow"))').wait_for()
        jobs = {job["name"]: job["state"] for job in api.get("/jobs").json()["jobs"]}
        assert jobs == {"rf": "succeeded", "slow": "cancelled"}

        model_row.locator('button[data-action="load"]').click()
        model_row.locator('button[data-action="unload"]').wait_for()
        page.set_input_files("#predict-file", str(rows))
        with page.expect_download() as download:
            page.click("#predict-form button[type=submit]")
        downloaded = Path(download.value.path()).read_text()
        with rows.open("rb") as file:
            expected = api.post(
                "/predict",
                files={"file": file},
                data={"config": '{"name": "rf"}'},
                headers={"Accept": "text/csv"},
            )
        assert downloaded == expected.text and downloaded.count("\n") == 2001

        # One row explained from typed values: bars from the base value to the output.
        values = rows.read_text().splitlines()[1]
        page.fill("#explain-values", values)
        page.click("#explain-button")
        result = page.locator("#explain-result")
        result.locator(".bar.total").wait_for()
        X = [[float(v) for v in values.split(",")[:5]] + [values.split(",")[5]]]
        answer = api.post("/explain", json={"X": X, "config": {"name": "rf"}}).json()
        shown = float(result.locator(".bar.total .value").inner_text())
        total = answer["base_values"][0] + sum(answer["contributions"][0][0])
        assert abs(shown - total) < 1e-3
        assert result.locator(".bar.up, .bar.down").count() == 6  # one per original column
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)  # for the README

        model_row.locator('button[data-action="remove"]').click()
        page.click("#confirm-yes")
        model_row.wait_for(state="detached")
        assert api.get("/models/rf").status_code == 404
        assert browser.errors == []
        assert browser.off_host(url) == []


def test_the_token_flow_with_each_token(tmp_path: Path, browser_on: Any) -> None:
    env = {"MANAGEMENT_TOKEN": MANAGEMENT, "INFERENCE_TOKEN": INFERENCE}
    env["CAPTURE_FLUSH_SECONDS"] = "0.2"
    with (
        uvicorn_server(tmp_path / "models", env=env) as (url, _),
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {MANAGEMENT}"}, timeout=60
        ) as api,
    ):
        X, y = make_classification(n_samples=200, n_features=5, random_state=0)
        config = {"name": "lr", "model_type": "LogisticRegression"}
        assert api.post(
            "/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config}
        ).is_success
        browser = browser_on(url)
        page = browser.page
        page.wait_for_selector("#token-panel:not([hidden])")
        assert page.is_hidden("#board")

        page.fill("#token", "not-a-token")
        page.click("#token-form button")
        page.locator("#connection", has_text="refused the token (401)").wait_for()

        page.fill("#token", INFERENCE)
        page.click("#token-form button")
        page.wait_for_selector('#models tr[data-model="lr"]')
        assert page.is_hidden("#fit-form") and page.is_hidden('button[data-action="load"]')
        refused = page.evaluate(
            """async (token) => (await fetch("/load", {method: "POST",
                 headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"},
                 body: JSON.stringify({config: {name: "lr"}})})).status""",
            INFERENCE,
        )
        assert refused == 403  # the server refuses what the page does not offer
        stored = page.evaluate(
            "() => [sessionStorage.length, localStorage.length, document.cookie]"
        )
        assert stored == [1, 0, ""]

        page.click("#forget-token")
        page.fill("#token", MANAGEMENT)
        page.click("#token-form button")
        page.locator('#models tr[data-model="lr"] button[data-action="load"]').click()
        page.locator('#models tr[data-model="lr"] button[data-action="unload"]').wait_for()
        assert page.is_visible("#fit-form")
        assert api.get("/status").json()["inference"]["loaded"] == ["lr"]

        # The monitoring view: captured rows with a shifted first column, all labelled.
        assert api.put("/models/lr/monitoring", json={"capture": True}).is_success
        shifted = X[:120].copy()
        shifted[:, 0] += 5
        answer = api.post("/predict", json={"X": shifted.tolist(), "config": {"name": "lr"}})
        request_id = answer.json()["request_id"]
        labels = {"request_id": request_id, "y": y[:120].tolist()}
        api_wait = time.monotonic() + 30
        while (given := api.post("/models/lr/feedback", json=labels)).json().get("matched") != 120:
            assert given.status_code == 200, given.text
            assert time.monotonic() < api_wait, "the captured rows were not written"
        page.select_option("#monitoring-model", "lr")
        figure = page.locator('figure[data-monitoring="lr/1"]')
        figure.locator(".counts", has_text="120 labelled").wait_for()
        report = api.get("/models/lr/monitoring").json()["versions"][0]
        assert figure.locator(".counts").inner_text() == "120 captured · 0 dropped · 120 labelled"
        live = f"{report['live']['accuracy']:.3f}"
        assert figure.locator(".accuracy").inner_text().startswith(f"live accuracy {live}")
        bars = figure.locator(".bar")
        assert bars.count() == 5  # one per feature, most drifted first
        assert figure.locator(".bar.drifted .label").all_inner_texts() == ["x0"]
        assert bars.first.get_attribute("data-feature") == "x0"
        figure.locator("svg.live-chart circle.live").wait_for()

        assert not any(INFERENCE in r or MANAGEMENT in r for r in browser.requested)
        assert browser.errors == [] or all("401" in e or "403" in e for e in browser.errors)
        assert browser.off_host(url) == []


def test_the_train_form_declares_and_leaves_out_columns_of_the_file(
    tmp_path: Path, browser_on: Any
) -> None:
    """Issue 45, item 4: the form sent no categorical_features or ignore_columns, so a
    table with a number-like text column or an identifier was only ever refused."""
    grades = ["9", "10", "11", "12", "college"]
    lines = ["id,grade,hours,label"] + [
        f"s{i:05d},{grades[i % 5]},{i % 17},{'yes' if (i % 17) > 8 else 'no'}" for i in range(1200)
    ]
    table = tmp_path / "survey.csv"
    table.write_text("\n".join(lines) + "\n")
    with uvicorn_server(tmp_path / "models") as (url, _), httpx.Client(base_url=url) as api:
        browser = browser_on(url)
        page = browser.page
        page.wait_for_selector("#board:not([hidden])")
        page.set_input_files("#fit-file", str(table))
        page.locator('#fit-categorical option[value="grade"]').wait_for(state="attached")
        assert page.locator("#fit-ignore option").all_inner_texts() == [
            "id", "grade", "hours", "label"]  # fmt: skip
        page.select_option("#fit-categorical", ["grade"])
        page.select_option("#fit-ignore", ["id"])
        page.fill("#fit-target", "label")
        page.fill("#fit-name", "survey")
        page.select_option("#fit-type", "LogisticRegression")
        page.click("#fit-form button[type=submit]")
        page.locator('#jobs tr[data-state="succeeded"]:has(td:text-is("survey"))').wait_for()
        features = {f["name"]: f["kind"] for f in api.get("/models/survey").json()["features"]}
        assert features == {"grade": "categorical", "hours": "numeric"}
        assert browser.errors == [] and browser.off_host(url) == []
