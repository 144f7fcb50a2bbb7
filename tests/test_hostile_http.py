"""The hostile review's findings about HTTP itself (issue 27, findings 5, 10, 13, 14, 15):
event streams without a cap, writing calls from other sites, two Authorization headers,
start-up tracebacks, media types, HEAD, and requests that never finish arriving."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.ui.hub import SnapshotHub
from tests.conftest import ClientFactory
from tests.helpers import fit_body, named
from tests.servers import PROJECT_ROOT, uvicorn_server

pytestmark = pytest.mark.anyio
MANAGEMENT, INFERENCE = "m-token-hostile-http", "i-token-hostile-http"
X = fit_body("x")["X"]
STREAMS = 40


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        assert (await client.post("/fit", json=fit_body("m"))).status_code == 201
        assert (await client.post("/load", json=named("m"))).status_code == 200
        yield client


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("hostile-http")
    log = directory / "server.log"
    env = {
        "HEADER_TIMEOUT_SECONDS": "1",
        "BODY_TIMEOUT_SECONDS": "1",
        "MAX_EVENT_STREAMS": str(STREAMS),
    }
    with uvicorn_server(directory / "models", env=env, log=log) as (url, _):
        yield url, log


# -- 10. writing calls a web page could send -------------------------------------------------
async def test_a_foreign_origin_can_not_write_and_the_models_stay(
    client: httpx.AsyncClient,
) -> None:
    evil = {"origin": "http://evil.example"}
    removed = await client.post("/remove_all", headers=evil)
    assert removed.status_code == 403
    assert "another site (http://evil.example)" in removed.json()["detail"]
    assert (await client.get("/models/m")).json()["status"] == "loaded"
    predicted = await client.post("/predict", json={"X": X[:1], **named("m")}, headers=evil)
    assert predicted.status_code == 403  # the hot path leaves it to the guard
    same_site = await client.post(
        "/predict", json={"X": X[:1], **named("m")}, headers={"origin": "http://localhost"}
    )
    assert same_site.status_code == 200
    assert (await client.get("/models", headers=evil)).status_code == 200  # reading is fine


async def test_bodies_not_sent_as_json_are_415(client: httpx.AsyncClient) -> None:
    body = '{"X": [[1, 2, 3, 4]], "y": [0], "config": {"name": "x", "model_type": "LogisticRegression"}}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        answer = await client.post("/fit", content=body, headers={"content-type": content_type})
        assert answer.status_code == 415, answer.text
        assert f"Content-Type is '{content_type}'" in answer.json()["detail"]
    as_json = await client.post(
        "/predict",
        content=f'{{"X": {X[:1]}, "config": {{"name": "m"}}}}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert as_json.status_code == 200
    multipart_load = await client.post("/load", files={"file": ("a.csv", b"a\n1\n")})
    assert multipart_load.status_code == 415


async def test_dns_rebinding_hosts_are_refused_in_open_mode_only(
    make_client: ClientFactory,
) -> None:
    rebound = {"host": "evil.example:8000"}
    async with make_client() as open_client:
        answer = await open_client.post("/remove_all", headers=rebound)
        assert answer.status_code == 403 and "'evil.example'" in answer.json()["detail"]
        assert (await open_client.get("/health", headers=rebound)).status_code == 200
    async with make_client(allowed_hosts="models.internal") as configured:
        allowed = await configured.post("/remove_all", headers={"host": "models.internal"})
        assert allowed.status_code == 200
    async with make_client(
        management_token=MANAGEMENT, allowed_origins="https://app.example"
    ) as guarded:
        bearer = {"authorization": f"Bearer {MANAGEMENT}"}
        assert (await guarded.post("/remove_all", headers={**rebound, **bearer})).status_code == 200
        listed = {"origin": "https://app.example", **bearer}
        assert (await guarded.post("/remove_all", headers=listed)).status_code == 200


# -- 13. two Authorization headers -------------------------------------------------------------
async def test_two_authorization_headers_are_400_on_both_paths(make_client: ClientFactory) -> None:
    async with make_client(management_token=MANAGEMENT, inference_token=INFERENCE) as client:
        bearer = {"authorization": f"Bearer {MANAGEMENT}"}
        assert (await client.post("/fit", json=fit_body("t"), headers=bearer)).status_code == 201
        assert (await client.post("/load", json=named("t"), headers=bearer)).status_code == 200
        twice = [
            ("authorization", f"Bearer {INFERENCE}"),
            ("authorization", "Bearer wrong"),
            ("content-type", "application/json"),
        ]
        body = f'{{"X": {X[:1]}, "config": {{"name": "t"}}}}'
        for path, method in (("/predict", "POST"), ("/models", "GET")):
            answer = await client.request(method, path, content=body, headers=twice)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json() == {
                "detail": "the request has more than one Authorization header: send one"
            }
        once = await client.post("/predict", content=body, headers=twice[::2])
        assert once.status_code == 200


# -- 5. event streams -----------------------------------------------------------------------
async def test_every_stream_of_a_role_shares_one_encoding_a_tick() -> None:
    """A tick's parts are encoded once per role, whatever the number of pages; a page gets
    the whole snapshot once, then only what changed (issue 45, item 4: with 30 jobs in
    history a page was sent about 90 KB a second)."""
    built = 0

    def build() -> dict[str, Any]:
        nonlocal built
        built += 1
        return {"n": built, "models": [{"name": f"m{i}"} for i in range(50)]}

    hub = SnapshotHub(build, period=0.05)
    encoded: list[str] = []
    encode = hub._encode
    hub._encode = lambda role: (encoded.append(role), encode(role))[1]  # type: ignore[method-assign]
    frames: dict[int, list[bytes]] = {i: [] for i in range(20)}

    async def page(index: int) -> None:
        async for frame in hub.frames("inference" if index % 2 else "management"):
            frames[index].append(frame)
            if len(frames[index]) == 2:
                return

    await asyncio.wait_for(asyncio.gather(*(page(i) for i in range(20))), timeout=10)
    await hub.close()
    assert len(encoded) <= 2 * (built + 1), (len(encoded), built)  # per role and tick, not page
    assert frames[1][0].startswith(b'event: snapshot\ndata: {"n":')
    assert b'"role":"inference"' in frames[1][0] and b'"role":"management"' in frames[0][0]
    for page_frames in frames.values():  # then only the part that changed
        assert page_frames[1].startswith(b'event: changes\ndata: {"n":')
        assert b"models" not in page_frames[1] and b"role" not in page_frames[1]


def test_streams_are_capped_give_their_place_back_and_close_quietly(
    real_server: tuple[str, Path],
) -> None:
    url, log = real_server
    with httpx.Client(base_url=url, timeout=10) as many:
        for _ in range(3):
            replies = [many.stream("GET", "/ui/events") for _ in range(STREAMS)]
            readers = []  # kept: a reader dropped closes its stream
            for reply in replies:
                opened = reply.__enter__()
                assert opened.status_code == 200
                readers.append(opened.iter_bytes())
                assert next(readers[-1]).startswith(b"event: snapshot")
            refused = httpx.get(f"{url}/ui/events")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            assert refused.json()["detail"] == (
                f"{STREAMS} event streams are open already (MAX_EVENT_STREAMS): close one, "
                "or try again later"
            )
            assert httpx.get(f"{url}/jobs/nope/events").status_code == 503  # one cap for all
            for reply in replies:
                reply.__exit__(None, None, None)
            assert _eventually_free(url)
    assert httpx.get(f"{url}/health").status_code == 200
    text = log.read_text()
    assert "Traceback" not in text and "BrokenResourceError" not in text


def _eventually_free(url: str, timeout: float = 10) -> bool:
    """Whether the streams' places are given back (a stream of an unknown job: 404)."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/jobs/nope/events").status_code != 404:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- 15. media types, HEAD, and requests that never finish ----------------------------------
def test_head_is_answered_where_get_is(real_server: tuple[str, Path]) -> None:
    url, _ = real_server
    for path in ("/health", "/models", "/status", "/ui"):
        answer = httpx.head(f"{url}{path}")
        assert answer.status_code == 200, path
        assert answer.content == b""


def _exchange(url: str, data: bytes) -> tuple[bytes, float]:
    """Send `data`, then read until the server closes: what it answered, and how long."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(data)
        started, received = time.monotonic(), b""
        while chunk := connection.recv(4096):
            received += chunk
        return received, time.monotonic() - started


def test_headers_and_bodies_that_stop_arriving_are_408(real_server: tuple[str, Path]) -> None:
    url, _ = real_server
    partial_headers, waited = _exchange(url, b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
    assert partial_headers.startswith(b"HTTP/1.1 408 ")
    assert waited < 20  # closed by the 1 s timeout, not by the socket's own 30 s
    short_body, waited = _exchange(
        url,
        b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"X": [[1',
    )
    assert short_body.startswith(b"HTTP/1.1 408 ") and waited < 20
    silent, waited = _exchange(url, b"")
    assert silent.startswith(b"HTTP/1.1 408 ") and waited < 20
    assert httpx.get(f"{url}/health").status_code == 200


# -- 14. a start-up that fails says one line ------------------------------------------------
def test_an_unusable_key_file_stops_the_server_with_one_line(tmp_path: Path) -> None:
    key = tmp_path / "model-signing.key"
    key.write_text("not a key")
    environment = {
        "MODELS_PATH": str(tmp_path / "models"),
        "MODEL_SIGNING_KEY_FILE": str(key),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors[0] == f"ERROR:    the signing key file {key} does not hold a hex key"
    assert "Traceback" not in done.stderr
