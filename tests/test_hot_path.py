"""POST /predict's hot path (server.http.middleware.fast_predict) answers exactly as the FastAPI app
behind it: the same status, headers and bytes, for answers and for every kind of refusal.
And under concurrency, the metrics and the access log count each request once."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.helpers import dataset, fit_body, wait_until
from tests.servers import uvicorn_server

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

pytestmark = pytest.mark.anyio
MANAGEMENT, INFERENCE = "m-token-for-tests", "i-token-for-tests"
X, _ = dataset(n_features=4)


def _requests() -> list[tuple[str, dict[str, str], bytes]]:
    """(what, headers, body): answers and refusals of every kind the route gives."""
    as_json = {"content-type": "application/json"}

    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    return [
        ("labels", as_json, body({"X": X[:3], "config": {"name": "lr"}})),
        (
            "probabilities",
            as_json,
            body({"X": X[:2], "config": {"name": "rf", "probabilities": True}}),
        ),
        ("records", as_json, body({"records": [{"a": 1}], "config": {"name": "lr"}})),
        ("no content type", {}, body({"X": X[:1], "config": {"name": "lr"}})),
        ("unknown model", as_json, body({"X": X[:1], "config": {"name": "nobody"}})),
        ("not loaded", as_json, body({"X": X[:1], "config": {"name": "idle"}})),
        ("wrong width", as_json, body({"X": [[1.0, 2.0]], "config": {"name": "lr"}})),
        ("not JSON", as_json, b"{'X': nope"),
        ("NaN", as_json, b'{"X": [[NaN, 1, 2, 3]], "config": {"name": "lr"}}'),
        ("unknown field", as_json, body({"X": X[:1], "config": {"name": "lr"}, "extra": 1})),
        ("empty body", as_json, b""),
        (
            "csv answer",
            {**as_json, "accept": "text/csv"},
            body({"X": X[:2], "config": {"name": "lr"}}),
        ),
        ("too big", as_json, body({"X": X * 200, "config": {"name": "lr"}})),
    ]


Answer = tuple[int, str | None, str | None, bytes]


async def _answers(app: Any, headers: dict[str, str]) -> dict[str, Answer]:
    """Every request with the same id: both paths must echo it, and answer the same bytes."""
    answers = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for what, extra, content in _requests():
            sent = {**headers, "x-request-id": "byte-for-byte", **extra}
            reply = await client.post("/predict", content=content, headers=sent)
            answers[what] = (
                reply.status_code,
                reply.headers.get("content-type"),
                reply.headers.get("x-request-id"),
                reply.content,
            )
    return answers


@pytest.mark.parametrize("tokens", [False, True], ids=["open", "tokens"])
async def test_the_hot_path_answers_byte_for_byte_as_the_fastapi_app(
    make_client: ClientFactory, tokens: bool
) -> None:
    settings: dict[str, Any] = {"max_body_mb": 0.05}
    management: dict[str, str] = {}
    if tokens:
        settings |= {"management_token": MANAGEMENT, "inference_token": INFERENCE}
        management = {"authorization": f"Bearer {MANAGEMENT}"}
    async with make_client(**settings) as client:
        for name, model_type in (
            ("lr", "LogisticRegression"),
            ("rf", "RandomForestClassifier"),
            ("idle", "LogisticRegression"),
        ):
            fitted = await client.post("/fit", json=fit_body(name, model_type), headers=management)
            assert fitted.status_code == 201, fitted.text
        for name in ("lr", "rf"):
            loaded = await client.post("/load", json={"config": {"name": name}}, headers=management)
            assert loaded.status_code == 200
        app = client.app  # type: ignore[attr-defined]
        credentials = [{}]
        if tokens:
            credentials = [
                {},
                {"authorization": f"Bearer {INFERENCE}"},
                {"authorization": f"Bearer {MANAGEMENT}"},
                {"authorization": "Bearer wrong"},
                {"authorization": f"Basic {INFERENCE}"},
            ]
        for headers in credentials:
            hot, behind = await _answers(app, headers), await _answers(app.app, headers)
            assert hot == behind
            statuses = {what: status for what, (status, *_) in hot.items()}
            if tokens and headers.get("authorization", "").startswith("Bearer m"):
                assert statuses["labels"] == statuses["probabilities"] == 200
            if "authorization" in headers and headers["authorization"].endswith(INFERENCE):
                assert statuses["labels"] == 200 if "Bearer" in headers["authorization"] else 401
        if not tokens:  # the answers themselves, not only their sameness
            assert statuses == {
                "labels": 200,
                "probabilities": 200,
                "records": 422,
                "no content type": 415,
                "unknown model": 404,
                "not loaded": 409,
                "wrong width": 422,
                "not JSON": 422,
                "NaN": 422,
                "unknown field": 422,
                "empty body": 422,
                "csv answer": 200,
                "too big": 413,
            }
            assert hot["csv answer"][1] == "text/csv; charset=utf-8"


def _metric(text: str, status: int) -> float:
    pattern = rf'_http_requests_total\{{method="POST",route="/predict",status="{status}"\}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_metrics_and_access_log_count_each_request_once_under_concurrency(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    env = {"ACCESS_LOG": "json"}
    with uvicorn_server(tmp_path / "models", env=env, log=log) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            assert (await client.post("/fit", json=fit_body("lr"))).status_code == 201
            assert (await client.post("/load", json={"config": {"name": "lr"}})).status_code == 200
            good = {"X": X[:1], "config": {"name": "lr"}}
            bodies = [good] * 120 + [{"X": X[:1], "config": {"name": "nobody"}}] * 30
            bodies += [{"X": [[1.0]], "config": {"name": "lr"}}] * 30
            replies = await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))
            assert Counter(r.status_code for r in replies) == {200: 120, 404: 30, 422: 30}
            metrics = (await client.get("/metrics")).text
            assert (_metric(metrics, 200), _metric(metrics, 404), _metric(metrics, 422)) == (
                120,
                30,
                30,
            )

            def predict_lines() -> Counter[int]:
                lines = [
                    json.loads(line)
                    for line in log.read_text().splitlines()
                    if line.startswith("{")
                ]
                return Counter(line["status"] for line in lines if line["route"] == "/predict")

            async def all_written() -> bool:
                return sum(predict_lines().values()) >= 180

            await wait_until(all_written, timeout=10, what="180 access log lines")
            assert predict_lines() == {200: 120, 404: 30, 422: 30}

            # Every answer has its request id, the hot path's and the refusals' alike, sortable
            # by time (UUIDv7); /predict's body says it; the access log line carries it.
            ids = [reply.headers["x-request-id"] for reply in replies]
            assert len(set(ids)) == 180 and all(UUID7.fullmatch(rid) for rid in ids)
            assert all(r.json()["request_id"] == r.headers["x-request-id"]
                       for r in replies if r.status_code == 200)  # fmt: skip
            first = (await client.post("/predict", json=good)).headers["x-request-id"]
            later = (await client.post("/predict", json=good)).headers["x-request-id"]
            made = int(first.replace("-", "")[:12], 16) / 1000  # its millisecond, first
            assert abs(made - time.time()) < 60 and first[:13] <= later[:13]
            own = await client.post("/predict", json=good, headers={"X-Request-Id": "order-77"})
            assert own.headers["x-request-id"] == own.json()["request_id"] == "order-77"
            for bad in ("x" * 129, "tab\there"):
                replaced = await client.post("/predict", json=good, headers={"X-Request-Id": bad})
                assert UUID7.fullmatch(replaced.headers["x-request-id"])
            # The full app's routes too: a file, /evaluate, a refused /explain.
            by_file = await client.post(
                "/predict",
                files={"file": ("rows.csv", b"x0,x1,x2,x3\n0.1,0.2,0.3,0.4\n")},
                data={"config": '{"name": "lr"}'},
                headers={"X-Request-Id": "file-1"},
            )
            assert by_file.headers["x-request-id"] == by_file.json()["request_id"] == "file-1"
            evaluated = await client.post("/evaluate", json={**good, "y": [1]})
            assert evaluated.status_code == 200 and UUID7.fullmatch(
                evaluated.headers["x-request-id"]
            )
            unknown = await client.post("/explain", json={"X": X[:1], "config": {"name": "nobody"}})
            assert unknown.status_code == 404 and "x-request-id" in unknown.headers
            assert "x-request-id" not in (await client.get("/health")).headers

            def logged_ids() -> set[str]:
                text = log.read_text().splitlines()
                return {json.loads(line).get("request_id") for line in text if line[:1] == "{"}

            async def file_logged() -> bool:
                return "file-1" in logged_ids()

            await wait_until(file_logged, timeout=10, what="the file's access log line")
            assert set(ids) | {"order-77", "file-1"} <= logged_ids()
