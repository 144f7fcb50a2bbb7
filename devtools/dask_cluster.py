"""A real Dask cluster for the tests and the benchmarks, started the way users start one:
a `dask scheduler` process and `dask worker --nthreads 1` processes (each under its nanny),
on 127.0.0.1, from a folder outside the project and with no PYTHONPATH, so that they can't
import its code (the server sends what a fit needs).

They run in a venv of their own that borrows this one's packages but not this project
(devtools.venvs), so the cluster is as stock as a user's."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from distributed import Client

from devtools.local_server import free_port
from devtools.venvs import borrowing_venv

START_TIMEOUT = 60.0
# As the docs tell operators: a worker that dies fails its task, never a silent retry.
CLUSTER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


def cluster_environment() -> dict[str, str]:
    """This process's environment, without anything that would put the project on the path."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | CLUSTER_ENV


@dataclass
class Cluster:
    port: int
    log_dir: Path
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own
            return subprocess.Popen(
                [borrowing_venv(self.log_dir / "stock-venv"), "-m", "dask", *arguments],
                cwd=self.log_dir,
                env=cluster_environment(),
                stdout=log,
                stderr=log,
            )

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
            "--no-dashboard",
        )  # fmt: skip

    def add_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            f"worker-{len(self.workers)}", "worker", self.address, "--nthreads", "1",
            "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int) -> None:
        with Client(self.address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(count, timeout=START_TIMEOUT)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> the pid of the worker process (not its nanny)."""
        with Client(self.address, timeout=START_TIMEOUT) as client:
            return client.run(os.getpid)

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait(30)

    def stop_all(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                self.stop(process)


@contextmanager
def dask_cluster(log_dir: Path, workers: int = 2) -> Iterator[Cluster]:
    log_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(free_port(), log_dir)
    cluster.start_scheduler()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(workers):
            cluster.add_worker()
        while True:
            try:
                cluster.wait_for_workers(workers)
                break
            except OSError:
                assert time.monotonic() < deadline, "the Dask scheduler did not start"
                time.sleep(0.2)
        yield cluster
    finally:
        cluster.stop_all()
