"""The dashboard's server side: the page's headers, its event stream and who may read it,
one snapshot a second whatever the number of pages, the p99 from the histogram, and the
pictures a fit keeps for it (the browser itself: tests/test_dashboard_browser.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.metrics import Traffic
from server.ui.hub import SnapshotHub
from server.ui.snapshot import Snapshots
from server.ui.traffic import p99_upper_bound
from tests.conftest import ClientFactory
from tests.helpers import fit_body
from tests.servers import uvicorn_server

pytestmark = pytest.mark.anyio
MANAGEMENT, INFERENCE = "ui-management", "ui-inference"


def test_the_p99_is_the_first_bound_holding_99_percent_of_the_window() -> None:
    before = Traffic(10, ((0.001, 5.0), (0.005, 10.0), (float("inf"), 10.0)))
    after = Traffic(310, ((0.001, 200.0), (0.005, 308.0), (float("inf"), 310.0)))
    # In the window: 195 under 1 ms, 298 under 5 ms, 300 in all: 99% is 297.
    assert p99_upper_bound(before, after) == 0.005
    assert p99_upper_bound(after, after) is None  # no request in the window


async def test_ten_pages_share_one_snapshot_a_tick_and_the_ticker_stops_with_the_last() -> None:
    built = 0

    def build() -> dict[str, Any]:
        nonlocal built
        built += 1
        return {"n": built}

    hub = SnapshotHub(build, period=0.05)
    received: list[list[dict[str, Any]]] = [[] for _ in range(10)]

    async def page(index: int) -> None:
        async for snapshot in hub.stream():
            received[index].append(snapshot)
            if len(received[index]) == 3:
                return

    await asyncio.wait_for(asyncio.gather(*(page(i) for i in range(10))), timeout=10)
    assert built <= 4  # not one per page: one per tick
    for pages in received:  # each page saw three of them, in order
        assert [s["n"] for s in pages] == sorted({s["n"] for s in pages}) and len(pages) == 3
    assert hub.watchers == 0
    await hub.close()


async def test_the_page_is_served_under_a_strict_policy(make_client: ClientFactory) -> None:
    async with make_client(management_token=MANAGEMENT, inference_token=INFERENCE) as client:
        page = await client.get("/ui")  # open, as /docs: it holds no data
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "connect-src 'self'" in policy and "unsafe" not in policy
        assert 'data-tokens-required="true"' in page.text
        for asset in ("main.js", "api.js", "render.js", "charts.js", "dashboard.css"):
            assert (await client.get(f"/ui/static/{asset}")).status_code == 200
        assert (await client.get("/ui/events")).status_code == 401


async def test_a_fit_keeps_its_roc_curves_and_confusion_matrix(client: httpx.AsyncClient) -> None:
    body = fit_body("three", "RandomForestClassifier", n_classes=3, n_samples=150)
    body["config"]["validation_fraction"] = 0.2
    fitted = (await client.post("/fit", json=body)).json()
    validation = fitted["validation"]
    matrix = np.asarray(validation["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == validation["n_samples"] == 30
    assert np.trace(matrix) / matrix.sum() == pytest.approx(validation["scores"]["accuracy"])
    curves = validation["roc_curve"]
    assert [curve["class_index"] for curve in curves] == [0, 1, 2]
    for curve in curves:
        assert curve["fpr"][0] == 0 and curve["fpr"][-1] == 1 and len(curve["fpr"]) <= 64
        assert curve["fpr"] == sorted(curve["fpr"]) and curve["tpr"] == sorted(curve["tpr"])
    stored = (await client.get("/models/three")).json()["validation"]
    assert stored["confusion_matrix"] == validation["confusion_matrix"]


def first_snapshot(url: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{url}/ui/events", headers=headers, timeout=30) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line.startswith("data:"):
                return dict(json.loads(line[5:]))
    raise AssertionError("the stream ended without a snapshot")


def test_the_stream_tells_each_token_its_role(tmp_path: Path) -> None:
    env = {"MANAGEMENT_TOKEN": MANAGEMENT, "INFERENCE_TOKEN": INFERENCE}
    with uvicorn_server(tmp_path / "models", env=env) as (url, _):
        headers = {"Authorization": f"Bearer {MANAGEMENT}"}
        assert httpx.post(f"{url}/fit", json=fit_body("m"), headers=headers, timeout=60).is_success
        for token, role in ((INFERENCE, "inference"), (MANAGEMENT, "management")):
            snapshot = first_snapshot(url, token)
            assert snapshot["role"] == role
            assert [m["name"] for m in snapshot["models"]] == ["m"]
            assert snapshot["models"][0]["versions"][0]["status"] == "trained"
            assert snapshot["training"]["slots"] == 1
            assert snapshot["jobs"][0]["state"] == "succeeded"


def test_the_newest_finished_jobs_are_listed_once_more_than_twenty_have_finished() -> None:
    """Review item 14: the dashboard took the last 20 of a newest-first list, so once 20 had
    finished, new jobs never appeared."""

    class Job:
        def __init__(self, number: int, state: str) -> None:
            self.number, self.state = number, state

        def describe(self) -> dict[str, Any]:
            return {"id": str(self.number), "state": self.state}

    class Service:  # as the trainer keeps them: newest first
        def jobs(self) -> list[Job]:
            return [Job(30, "running"), *(Job(n, "succeeded") for n in range(29, 0, -1))]

    class Catalog:
        def status(self) -> dict[str, Any]:
            return {"training": {}, "inference": {}}

        def models(self) -> list[dict[str, Any]]:
            return []

    class Metrics:
        def traffic(self) -> Traffic:
            return Traffic(0.0, ())

    built = Snapshots(Catalog(), Service(), Metrics()).build()  # type: ignore[arg-type]
    assert [job["id"] for job in built["jobs"]] == [str(n) for n in range(30, 9, -1)]
