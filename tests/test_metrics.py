"""GET /metrics (API-v2 "Metrics"): every metric named in the contract, each moving when it
should, and no label taking a value the server did not validate."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ClientFactory
from tests.helpers import fit_body, named, slow_fit_body, wait_training

pytestmark = pytest.mark.anyio

CONTRACT = {
    "model_server_http_requests": "counter",
    "model_server_http_request_duration_seconds": "histogram",
    "model_server_training_slots": "gauge",
    "model_server_training_slots_busy": "gauge",
    "model_server_trainings": "counter",
    "model_server_training_duration_seconds": "histogram",
    "model_server_models_loaded": "gauge",
    "model_server_models_loaded_max": "gauge",
    "model_server_prediction_rows": "counter",
    "model_server_prediction_batch_rows": "histogram",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[dict[str, str], Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    types, samples = {}, {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_contract_metric_is_there_with_its_type(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    types, samples = await scrape(client)
    for name, kind in CONTRACT.items():
        assert types.get(name) == kind, name
    assert value(samples, "model_server_training_slots") == 1
    assert value(samples, "model_server_models_loaded_max") == 2
    assert (
        value(
            samples,
            "model_server_http_requests_total",
            method="GET",
            route="/health",
            status="200",
        )
        == 1
    )


async def test_each_metric_moves_when_it_should(make_client: ClientFactory) -> None:
    async with make_client(max_train_seconds=60) as client:
        _, before = await scrape(client)
        body = fit_body("m", "RandomForestClassifier", {"n_estimators": 10})
        assert (await client.post("/fit", json=body)).status_code == 201
        _, after_fit = await scrape(client)
        kind = {"model_type": "RandomForestClassifier"}
        assert value(after_fit, "model_server_trainings_total", outcome="succeeded", **kind) == 1
        assert value(after_fit, "model_server_training_duration_seconds_count", **kind) == 1
        assert (
            value(
                after_fit,
                "model_server_http_requests_total",
                method="POST",
                route="/fit",
                status="201",
            )
            == 1
        )

        # While a fit trains: one busy slot; another fit is rejected (503).
        slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("slow")))
        await wait_training(client, "slow")
        refused = await client.post("/fit", json=fit_body("refused", "XGBClassifier"))
        assert refused.status_code == 503
        _, busy = await scrape(client)
        assert value(busy, "model_server_training_slots_busy") == 1
        assert (
            value(
                busy, "model_server_trainings_total", model_type="XGBClassifier", outcome="rejected"
            )
            == 1
        )
        job_id = (await client.get("/status")).json()["training"]["jobs"][0]["id"]
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
        assert (await slow).status_code == 409

        # A limit: max_seconds stops a fit, and the hit is counted by the limit's name.
        limited = slow_fit_body("limited")
        limited["config"]["max_seconds"] = 0.3
        assert (await client.post("/fit", json=limited)).status_code == 422

        # Load, predict 7 rows, unload.
        assert (await client.post("/load", json=named("m"))).status_code == 200
        _, loaded = await scrape(client)
        assert value(loaded, "model_server_models_loaded") == 1
        predict = {"X": body["X"][:7], **named("m")}
        assert (await client.post("/predict", json=predict)).status_code == 200
        assert (await client.post("/unload", json=named("m"))).status_code == 200
        _, end = await scrape(client)

    forest = {"model_type": "RandomForestClassifier"}
    assert value(end, "model_server_trainings_total", outcome="cancelled", **forest) == 1
    assert value(end, "model_server_trainings_total", outcome="failed", **forest) == 1
    assert value(end, "model_server_training_limit_hits_total", limit="max_seconds") == 1
    assert value(end, "model_server_training_slots_busy") == 0
    assert value(end, "model_server_models_loaded") == 0
    assert value(end, "model_server_prediction_rows_total", **forest) == 7
    assert value(end, "model_server_prediction_batch_rows_count") == 1
    assert value(end, "model_server_prediction_batch_rows_sum") == 7
    assert value(before, "model_server_prediction_rows_total", **forest) == 0


async def test_no_label_carries_a_model_name_or_a_raw_path(client: httpx.AsyncClient) -> None:
    secret = "customer-churn-secret"
    assert (await client.post("/fit", json=fit_body(secret))).status_code == 201
    await client.get(f"/models/{secret}")
    await client.post("/load", json=named(secret))
    await client.post("/predict", json={"X": [[0.0] * 4], **named(secret)})
    await client.get(f"/no/such/{secret}")
    await client.request("BREW", "/health")
    _, samples = await scrape(client)
    label_values = {v for _, labels in samples for _, v in labels}
    assert not any(secret in v for v in label_values)
    routes = {v for _, labels in samples for k, v in labels if k == "route"}
    assert "/models/{name}" in routes and "unmatched" in routes
    assert routes <= {
        "/fit",
        "/models/{name}",
        "/load",
        "/predict",
        "/health",
        "unmatched",
        "/metrics",
    }
    methods = {v for _, labels in samples for k, v in labels if k == "method"}
    assert methods <= {"GET", "POST", "other"}


async def test_metrics_can_be_turned_off(make_client: ClientFactory) -> None:
    async with make_client(metrics=False) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.post("/fit", json=fit_body("m"))).status_code == 201
