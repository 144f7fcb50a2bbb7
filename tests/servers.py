"""Real servers for the tests: `uvicorn server.main:app` on a free port of 127.0.0.1."""

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
import psutil

from tests.helpers import wait_until

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_server(
    models_dir: Path, training_cores: int = 2
) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    env = {
        **os.environ,
        "MODELS_PATH": str(models_dir),  # overrides the project's .env
        "TRAINING_CORES": str(training_cores),
        "MAX_INFERENCE_MODELS": "2",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "3",
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
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


def training_processes(server_pid: int) -> list[psutil.Process]:
    children = psutil.Process(server_pid).children(recursive=True)
    return [p for p in children if "spawn_main" in " ".join(p.cmdline())]


async def wait_gone(processes: list[psutil.Process], timeout: float = 10) -> float:
    """Seconds until every process has exited."""
    started = time.monotonic()

    async def all_gone() -> bool:
        return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)

    await wait_until(all_gone, timeout=timeout, what="the training processes to stop")
    return time.monotonic() - started
