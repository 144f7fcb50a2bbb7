"""A real uvicorn server on a free port of 127.0.0.1, for the tests and the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def key_file_of(models_dir: Path) -> Path:
    """The signing key of the servers started on `models_dir`: beside it, as the default is,
    so that servers started on one folder share it."""
    return models_dir.parent / f"{models_dir.name}.key"


@contextmanager
def uvicorn_server(
    models_dir: Path,
    training_cores: int = 2,
    app: str = "server.main:app",
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    log: Path | None = None,
    cwd: Path = PROJECT_ROOT,
    cores: set[int] | None = None,
    ready_status: int = 200,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `app` from the code in `cwd` with MODELS_PATH and TRAINING_CORES (overriding the
    project's .env), bound to `host`, its output into `log` if given; yield its URL (always on
    127.0.0.1) and process once /health answers (with `ready_status`: 503 for a replica
    that can't serve); kill it on the way out. With `cores`, the server may run on those
    cores only (as a container's cpuset would have it)."""
    port = free_port()
    environment = {
        **os.environ,
        "MODELS_PATH": str(models_dir),
        "TRAINING_CORES": str(training_cores),
        "MAX_INFERENCE_MODELS": "2",
        "ACCESS_LOG": "off",  # as --no-access-log below: a line per request is noise here
        "MODEL_SIGNING_KEY_FILE": str(key_file_of(models_dir)),
        **(env or {}),
    }
    if app == "server.main:app" and cwd == PROJECT_ROOT:  # as `make run` starts it
        command = [sys.executable, "-m", "server", "serve", "--host", host, "--port", str(port)]
        command += ["--grace", "3"]
    else:  # another app, or an older checkout of this one (bench/ceiling.py): plain uvicorn
        command = [sys.executable, "-m", "uvicorn", app, "--host", host, "--port", str(port)]
        command += ["--timeout-graceful-shutdown", "3", "--no-access-log"]
    output = open(log, "wb") if log is not None else None  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdout=output,
        stderr=output,
        preexec_fn=None if cores is None else lambda: os.sched_setaffinity(0, cores),
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == ready_status:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not answer /health in time"
            time.sleep(0.1)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(STOP_TIMEOUT)
        if output is not None:
            output.close()
