"""Bearer-token auth (API-v2 "Auth"): every guarded endpoint, both tokens, open endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.helpers import fit_body, named, slow_fit_body, wait_until

pytestmark = pytest.mark.anyio

MANAGEMENT = "m-4f1d2c8a9b7e"
INFERENCE = "i-0c3e5a7b9d1f"
ANY_JOB = "0123456789abcdef"

# (method, path, JSON body) for each guarded endpoint; the bodies are valid.
MANAGEMENT_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/fit", fit_body("guarded")),
    ("POST", "/load", named("guarded")),
    ("POST", "/unload", named("guarded")),
    ("POST", "/remove", named("guarded")),
    ("POST", "/remove_all", None),
    ("POST", f"/jobs/{ANY_JOB}/cancel", None),
    ("POST", "/models/guarded/promote", {"version": 1}),
    ("POST", "/models/guarded/rollback", None),
    ("PUT", "/models/guarded/aliases/staging", {"version": 1}),
    ("DELETE", "/models/guarded/aliases/staging", None),
    ("DELETE", "/models/guarded/versions/1", None),
]
INFERENCE_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/predict", {"X": [[0.0, 0.0, 0.0, 0.0]], **named("guarded")}),
    ("GET", "/models", None),
    ("GET", "/models/guarded", None),
    ("GET", "/models/guarded/versions", None),
    ("GET", "/models/guarded/versions/1", None),
    ("GET", "/models/guarded/history", None),
    ("GET", "/status", None),
    ("GET", "/jobs", None),
    ("GET", f"/jobs/{ANY_JOB}", None),
    ("GET", f"/jobs/{ANY_JOB}/events", None),
]
OPEN_ENDPOINTS = ["/health", "/metrics", "/docs", "/redoc", "/openapi.json"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def guarded(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(management_token=MANAGEMENT, inference_token=INFERENCE) as client:
        yield client


async def send(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), MANAGEMENT_ENDPOINTS + INFERENCE_ENDPOINTS)
async def test_a_guarded_endpoint_needs_a_known_token(
    guarded: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    for headers in (
        {},
        bearer("wrong"),
        bearer(MANAGEMENT + "x"),
        {"Authorization": f"Basic {MANAGEMENT}"},
    ):
        response = await send(guarded, method, path, body, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert MANAGEMENT not in response.text and INFERENCE not in response.text
    # The management token opens every guarded endpoint: whatever comes back, not 401/403.
    response = await send(guarded, method, path, body, bearer(MANAGEMENT))
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize(("method", "path", "body"), MANAGEMENT_ENDPOINTS)
async def test_the_inference_token_on_a_management_endpoint_is_403(
    guarded: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await send(guarded, method, path, body, bearer(INFERENCE))
    assert response.status_code == 403
    assert "management token" in response.json()["detail"]


async def test_each_token_succeeds_where_it_belongs(guarded: httpx.AsyncClient) -> None:
    manage, infer = bearer(MANAGEMENT), bearer(INFERENCE)
    body = fit_body("m")
    assert (await guarded.post("/fit", json=body, headers=manage)).status_code == 201
    assert (await guarded.post("/load", json=named("m"), headers=manage)).status_code == 200
    predict = {"X": body["X"][:2], **named("m")}
    assert (await guarded.post("/predict", json=predict, headers=infer)).status_code == 200
    assert (await guarded.get("/models", headers=infer)).status_code == 200
    assert (await guarded.get("/models/m", headers=infer)).json()["status"] == "loaded"
    assert (await guarded.get("/status", headers=infer)).status_code == 200
    [job] = (await guarded.get("/jobs", headers=infer)).json()["jobs"]
    assert (await guarded.get(f"/jobs/{job['id']}", headers=infer)).status_code == 200
    events = await guarded.get(f"/jobs/{job['id']}/events", headers=infer)
    assert events.status_code == 200 and "event: succeeded" in events.text
    assert (await guarded.post("/unload", json=named("m"), headers=manage)).status_code == 200

    slow = await guarded.post("/fit?wait=false", json=slow_fit_body("slow"), headers=manage)
    assert slow.status_code == 202
    cancel = await guarded.post(f"/jobs/{slow.json()['id']}/cancel", headers=manage)
    assert cancel.status_code == 200
    assert (await guarded.post("/remove", json=named("m"), headers=manage)).status_code == 200
    assert (await guarded.post("/remove_all", headers=manage)).status_code == 200


async def test_open_endpoints_need_no_token(guarded: httpx.AsyncClient) -> None:
    for path in OPEN_ENDPOINTS:
        assert (await guarded.get(path)).status_code == 200, path


async def test_openapi_declares_the_bearer_scheme(guarded: httpx.AsyncClient) -> None:
    document = (await guarded.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    [(scheme_name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = document["paths"]
    for method, path, _ in MANAGEMENT_ENDPOINTS + INFERENCE_ENDPOINTS:
        template = (
            path.replace(ANY_JOB, "{job_id}")
            .replace("/models/guarded", "/models/{name}")
            .replace("/aliases/staging", "/aliases/{alias}")
            .replace("/versions/1", "/versions/{version}")
        )
        assert paths[template][method.lower()]["security"] == [{scheme_name: []}], template
    assert "security" not in paths["/health"]["get"]


async def test_one_token_alone_guards_everything_with_it(make_client: ClientFactory) -> None:
    async with make_client(management_token=MANAGEMENT) as client:
        assert (await client.get("/models")).status_code == 401
        assert (await client.get("/models", headers=bearer(MANAGEMENT))).status_code == 200
    async with make_client(inference_token=INFERENCE) as client:
        # No management token is set: nobody can manage, and the answer says why.
        response = await client.post("/remove_all", headers=bearer(INFERENCE))
        assert response.status_code == 403
        assert (await client.get("/status", headers=bearer(INFERENCE))).status_code == 200


async def test_without_tokens_everything_is_open_and_unguarded(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/fit", json=fit_body("open"))).status_code == 201
    assert (await client.get("/models", headers=bearer("anything"))).status_code == 200
    # No guard at all, not one that lets everything through: OpenAPI declares none.
    document = (await client.get("/openapi.json")).json()
    assert "securitySchemes" not in document.get("components", {})
    assert not any("security" in op for ops in document["paths"].values() for op in ops.values())


async def test_tokens_never_reach_the_logs(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with make_client(
        management_token=MANAGEMENT, inference_token=INFERENCE, access_log="json"
    ) as client:
        await client.post("/fit", json=fit_body("logged"), headers=bearer(MANAGEMENT))
        await client.get("/models", headers=bearer(INFERENCE))
        await client.get("/models", headers=bearer("a-wrong-token-value"))
        await client.post("/remove_all", headers=bearer(INFERENCE))

        async def logged() -> bool:
            return len([r for r in caplog.records if r.name == "server.access"]) >= 4

        await wait_until(logged, timeout=10, what="four access log lines")
    text = caplog.text
    assert MANAGEMENT not in text and INFERENCE not in text and "a-wrong-token-value" not in text
    assert '"route": "/models"' in text and '"status": 401' in text
