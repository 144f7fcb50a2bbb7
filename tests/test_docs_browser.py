"""Swagger UI and ReDoc in a real browser, with no network: Debian's Chromium, driven by
Playwright as the system browser, against a real uvicorn.

The browser resolves no host name but 127.0.0.1 (`--host-resolver-rules`), so a page that
needed a CDN would stay blank; and every request it makes is recorded, so the test also
proves that nothing went out to any other host (ReDoc's footer logo is stopped inside the
browser by the page's Content-Security-Policy). The screenshot lands in docs/.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.servers import PROJECT_ROOT, uvicorn_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = shutil.which("chromium")
SCREENSHOT = PROJECT_ROOT / "docs" / "swagger-ui.png"
# What the machine's probe found necessary for a headless Chromium run as root, plus: no DNS.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOAD_TIMEOUT_MS = 30_000
TOKEN = "browser-test-inference-token"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (`make test` installs it with apt-get as root)",
)


def test_docs_and_redoc_render_with_no_network(tmp_path: Path) -> None:
    requested: list[str] = []
    blocked_by_policy: list[str] = []
    with (
        uvicorn_server(tmp_path / "models", env={"INFERENCE_TOKEN": TOKEN}) as (url, _),
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda request: requested.append(request.url))
            page.on(
                "requestfailed",
                lambda request: request.failure == "csp" and blocked_by_policy.append(request.url),
            )

            page.goto(f"{url}/docs")
            page.wait_for_selector(".opblock", timeout=LOAD_TIMEOUT_MS)
            operations = page.locator(".opblock-summary-path").all_inner_texts()
            for path in ("/fit", "/predict", "/jobs/{job_id}/cancel", "/metrics", "/health"):
                assert path in operations, operations
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

            # Try GET /status without a token (401), then through the Authorize button (200).
            status = page.locator("#operations-default-status_status_get")
            status.locator(".opblock-summary").click()
            status.locator("button.try-out__btn").click()
            assert try_it(status) == "401"
            page.locator("button.authorize").click()
            page.locator(".modal-ux input").fill(TOKEN)
            page.locator(".modal-ux button.authorize").click()
            page.locator(".modal-ux button.btn-done").click()
            assert try_it(status) == "200"

            page.goto(f"{url}/redoc")
            page.get_by_text("Train a model and save it").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        finally:
            browser.close()
    assert requested, "the browser made no request at all"
    local = (url, f"blob:{url}")  # blob: a script the page made itself, same origin
    foreign = [address for address in requested if not address.startswith(local)]
    sent = [address for address in foreign if address not in blocked_by_policy]
    assert sent == [], f"the pages asked other hosts for: {sent}"
    assert SCREENSHOT.stat().st_size > 10_000


def try_it(operation: Any) -> str:
    """Press Execute in an expanded operation; the status of the live response."""
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table tbody td.response-col_status").first
    live.wait_for(timeout=LOAD_TIMEOUT_MS)
    text: str = live.inner_text().strip()
    operation.locator("button.btn-clear").click()  # so the next Execute shows its own
    return text
