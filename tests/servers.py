"""Real servers for the tests: `uvicorn server.main:app` on a free port of 127.0.0.1, and
the training processes under them."""

from __future__ import annotations

import time

import psutil

from devtools.local_server import PROJECT_ROOT, STOP_TIMEOUT, free_port, uvicorn_server
from tests.helpers import wait_until

__all__ = [
    "PROJECT_ROOT",
    "STOP_TIMEOUT",
    "explainer_processes",
    "free_port",
    "training_processes",
    "uvicorn_server",
    "wait_gone",
]


EXPLAINER_NAME = "model-explainer"  # server.explain.worker names its process so


def training_processes(server_pid: int) -> list[psutil.Process]:
    children = psutil.Process(server_pid).children(recursive=True)
    return [
        p for p in children if "spawn_main" in " ".join(p.cmdline()) and p.name() != EXPLAINER_NAME
    ]


def explainer_processes(server_pid: int) -> list[psutil.Process]:
    children = psutil.Process(server_pid).children(recursive=True)
    return [p for p in children if p.name() == EXPLAINER_NAME]


async def wait_gone(processes: list[psutil.Process], timeout: float = 10) -> float:
    """Seconds until every process has exited."""
    started = time.monotonic()

    async def all_gone() -> bool:
        return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)

    await wait_until(all_gone, timeout=timeout, what="the training processes to stop")
    return time.monotonic() - started
