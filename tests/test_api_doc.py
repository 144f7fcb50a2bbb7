"""docs/API.md against the service's own /openapi.json: the same endpoints, the same statuses,
the same guards. A route added without its documentation, or a status documented that the
code never declares, fails here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from server.config import Settings
from server.replication.follower import FollowState
from server.replication.report import FollowCollector
from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "API.md"
HEADING = re.compile(r"^### `(GET|POST|PUT|DELETE) (/[^`]*)`$")
STATUS_ROW = re.compile(r"^\| `(\d{3})` \|")
GUARD_ROW = re.compile(r"^\| `(MANAGEMENT_TOKEN|INFERENCE_TOKEN)` \| ([^|]+) \|$")
ENDPOINT = re.compile(r"`(?:(GET|POST|PUT|DELETE) )?(/[^`]*)`")
# Pages of the docs themselves, not part of the contract's endpoints.
UNDOCUMENTED = {"/docs", "/redoc", "/docs/oauth2-redirect"}


def documented() -> dict[tuple[str, str], set[int]]:
    """(method, path) -> the statuses of its table, from each `### METHOD /path` section."""
    endpoints: dict[tuple[str, str], set[int]] = {}
    current: tuple[str, str] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = None
        elif heading := HEADING.match(line):
            current = (heading[1], heading[2])
            endpoints[current] = set()
        elif current is not None and (row := STATUS_ROW.match(line)):
            endpoints[current].add(int(row[1]))
    return endpoints


def documented_guards() -> dict[str, set[tuple[str, str]]]:
    """The Auth table: which token guards which (method, path)."""
    guards: dict[str, set[tuple[str, str]]] = {}
    for line in DOC.read_text().splitlines():
        if row := GUARD_ROW.match(line):
            method = "POST"
            found = set()
            for named_method, path in ENDPOINT.findall(row[2]):
                method = named_method or method  # "`POST /fit`, `/load`": POST carries over
                found.add((method, path))
            guards[row[1]] = found
    return guards


def declared(document: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    endpoints = {}
    for path, operations in document["paths"].items():
        if path in UNDOCUMENTED:
            continue
        for method, operation in operations.items():
            statuses = set()
            for code, response in operation["responses"].items():
                automatic_422 = code == "422" and response["description"] == "Validation Error"
                if not automatic_422:  # FastAPI adds it to any route with a parameter
                    statuses.add(int(code))
            endpoints[(method.upper(), path)] = statuses
    return endpoints


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A server with tokens: its OpenAPI carries the guards (an open one has none)."""
    async with make_client(management_token="m", inference_token="i") as client:
        yield client


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_endpoint_is_documented_with_the_statuses_it_declares(
    client: httpx.AsyncClient,
) -> None:
    in_doc, in_code = documented(), declared(await openapi(client))
    assert set(in_doc) == set(in_code)
    for endpoint, statuses in in_code.items():
        # 401 and 403 belong to the Auth section, which lists the guarded endpoints.
        assert in_doc[endpoint] == statuses - {401, 403}, endpoint


async def test_the_documented_guards_are_the_declared_ones(client: httpx.AsyncClient) -> None:
    document = await openapi(client)
    guards = documented_guards()
    for token, expected in (("MANAGEMENT_TOKEN", {401, 403}), ("INFERENCE_TOKEN", {401})):
        assert guards[token], token
        for method, path in guards[token]:
            operation = document["paths"][path][method.lower()]
            assert "security" in operation, (method, path)
            assert expected <= {int(code) for code in operation["responses"]}, (method, path)
    guarded = guards["MANAGEMENT_TOKEN"] | guards["INFERENCE_TOKEN"]
    for (method, path), _ in declared(document).items():
        operation = document["paths"][path][method.lower()]
        assert ("security" in operation) == ((method, path) in guarded), (method, path)


def test_the_design_page_names_every_module_of_the_server() -> None:
    """docs/design.md is drawn from the code: a module or package it does not name, or one it
    names that is gone, fails here."""
    page = (ROOT / "docs" / "design.md").read_text()
    server = ROOT / "server"
    for path in sorted(server.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        parent = path.parent.relative_to(ROOT).as_posix()
        named = f"`{path.relative_to(ROOT).as_posix()}`" in page or (
            f"`{parent}/`" in page and f"`{path.stem}`" in page
        )
        assert named, f"docs/design.md does not name {path.relative_to(ROOT)}"
    for named in re.findall(r"`(server/[\w/]+?)/?`", page):
        assert (ROOT / named).exists() or (ROOT / f"{named}.py").exists(), named


def test_the_configuration_page_lists_every_setting_once() -> None:
    """docs/configuration.md is the one home of the settings: its table names each one, and
    nothing that is not one (the README and the API page link to it)."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    listed = re.findall(r"^\| `([A-Z0-9_]+)` \|", page, re.M)
    assert len(listed) == len(set(listed))
    assert set(listed) == {name.upper() for name in Settings.model_fields}


async def test_the_metrics_page_names_every_metric(client: httpx.AsyncClient) -> None:
    """docs/metrics.md is the one home of the metrics: each family a server exposes (a
    replica's too, from its collector) is in its table."""
    page = (ROOT / "docs" / "metrics.md").read_text()
    exposition = (await client.get("/metrics")).text
    state = FollowState()
    exposition += generate_latest(_Only(FollowCollector(state))).decode()
    families = {
        family.name
        for family in text_string_to_metric_families(exposition)
        if not family.name.endswith("_created")  # prometheus-client's creation times
    }
    assert families
    for name in families:
        documented = f"`{name}`" in page or f"`{name}_total`" in page
        assert documented, f"docs/metrics.md does not name {name}"


class _Only(CollectorRegistry):
    def __init__(self, collector: Any) -> None:
        super().__init__()
        self.register(collector)
