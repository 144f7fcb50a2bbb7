"""What a long-running server must not do: grow in memory, files or threads; read a huge body."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.helpers import dataset, fit_body, named
from tests.servers import uvicorn_server

CYCLES = 50


def test_load_unload_cycles_of_a_large_model_keep_rss_flat(tmp_path: Path) -> None:
    big = fit_body(
        "big",
        "RandomForestClassifier",
        {"n_estimators": 40, "max_features": 1},
        n_samples=20_000,
        n_features=20,
    )
    with (
        uvicorn_server(tmp_path / "models") as (url, server),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        assert client.post("/fit", json=big).status_code == 201
        size_mb = client.get("/models/big").json()["size_bytes"] / 2**20
        process = psutil.Process(server.pid)
        before_any = process.memory_info().rss
        # The first load pays once for what stays (imported code paths, allocator arenas).
        assert client.post("/load", json=named("big")).status_code == 200
        loaded = process.memory_info().rss
        assert client.post("/unload", json=named("big")).status_code == 200
        start = process.memory_info().rss
        for _ in range(CYCLES):
            assert client.post("/load", json=named("big")).status_code == 200
            assert client.post("/unload", json=named("big")).status_code == 200
        end = process.memory_info().rss
    print(
        f"model {size_mb:.1f} MB on disk; RSS before any load {before_any / 2**20:.1f} MB, loaded "
        f"{loaded / 2**20:.1f} MB, after 1 cycle {start / 2**20:.1f} MB, after {CYCLES} more "
        f"{end / 2**20:.1f} MB ({(end - start) / start:+.1%})"
    )
    assert abs(end - start) <= 0.10 * start


def test_file_descriptors_and_threads_do_not_grow_with_requests(tmp_path: Path) -> None:
    X, _ = dataset()

    def traffic(client: httpx.Client, rounds: int, prefix: str) -> None:
        for i in range(rounds):
            assert client.post("/predict", json={"X": X[:5], **named("m")}).status_code == 200
            assert client.get("/models").status_code == 200
            assert client.post("/load", json=named("ghost")).status_code == 404
            assert client.post("/fit", json=fit_body("m")).status_code == 409
            with httpx.Client(base_url=client.base_url) as fresh:  # a new connection each round
                assert fresh.get("/health").status_code == 200
            if i % 10 == 0:
                assert client.post("/fit", json=fit_body(f"{prefix}{i}")).status_code == 201

    with (
        uvicorn_server(tmp_path / "models") as (url, server),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        client.post("/fit", json=fit_body("m"))
        client.post("/load", json=named("m"))
        process = psutil.Process(server.pid)
        traffic(client, 50, "warm")  # warm: thread pools reach their working size
        fds, threads = process.num_fds(), process.num_threads()
        traffic(client, 200, "more")
        # The socket of a connection the client just closed lingers until the server has
        # read the close: wait (bounded) for the counts to settle at or below the baseline.
        deadline = time.monotonic() + 5
        while (after := (process.num_fds(), process.num_threads())) > (fds, threads):
            assert time.monotonic() < deadline, f"still {after} against {(fds, threads)}"
            time.sleep(0.05)
    print(
        f"after 50 rounds: {fds} fds, {threads} threads; after 200 more: {after[0]} fds, {after[1]} threads"
    )
    assert after[0] <= fds
    assert after[1] <= threads


def read_response(connection: socket.socket) -> str:
    """One HTTP response with a Content-Length body, however the bytes arrive."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_declared_huge_body_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    with uvicorn_server(tmp_path / "models") as (url, server):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(
                b"POST /fit HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000000\r\n\r\n" + b"[" * 1000
            )
            started = time.monotonic()
            answer = read_response(connection)
            waited = time.monotonic() - started
        rss_mb = psutil.Process(server.pid).memory_info().rss / 2**20
    assert answer.startswith("HTTP/1.1 413")
    assert "MAX_BODY_MB" in answer
    print(f"413 for a declared 10 GB body after {waited * 1000:.0f} ms; server RSS {rss_mb:.0f} MB")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    """A bounded property-based run over /openapi.json against a real server with tokens:
    schemathesis sends the management token, and its requests without one must be refused."""
    token = "schemathesis-management-token"
    env = {"MANAGEMENT_TOKEN": token, "INFERENCE_TOKEN": "schemathesis-inference-token"}
    # Three slots: a fit it starts without waiting must not make the next one a 503 (the
    # documented answer when every slot is busy, which schemathesis counts as a server error).
    with (
        uvicorn_server(tmp_path / "models", training_cores=4, env=env) as (url, _),
        httpx.Client(
            base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        example = {  # the schema's own examples name "rf1" with two features: make it real
            "X": [[5.1, 3.5], [4.9, 3.0], [6.2, 3.4], [5.9, 3.0]],
            "y": ["setosa", "setosa", "virginica", "virginica"],
            "config": {
                "name": "rf1",
                "model_type": "RandomForestClassifier",
                "hyperparameters": {"n_estimators": 10},
            },
        }
        assert client.post("/fit", json=example).status_code == 201
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance,response_headers_conformance,negative_data_rejection",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "60",
                "--seed",
                "1",
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--generation-database",
                "none",
                "--no-color",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    summary = result.stdout[result.stdout.find("SUMMARY") :]
    print(summary)
    assert result.returncode == 0, result.stdout[-5000:]
    assert " passed" in summary
