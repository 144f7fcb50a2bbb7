"""`make bench`: every benchmark against a real server on 127.0.0.1, as ratios to the
in-process floor. Prints tables and saves them in bench/results/latest.json.

    python -m bench.run [--only fit,first_answer,ingest,parallel,predict,inline,responsiveness,
                                progress,cancel,priority,observability,dask,compiled,tail,
                                ceiling,profile,versions,loading,dashboard,automl,hostile,
                                explain,replicas,fit_phases,real_tables,monitoring,
                                sustained]
    python -m bench.report    the performance page (docs/performance.md) from the results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import (
    automl,
    backends,
    ceiling,
    compiled,
    dashboard,
    explain,
    first_answer,
    fit_overhead,
    fit_phases,
    hostile,
    ingest,
    jobs,
    loading,
    monitoring,
    observability,
    profile,
    real_tables,
    replicas,
    serving,
    sustained,
    tail,
    training,
    versions,
)
from bench.harness import take_tables
from devtools.local_server import uvicorn_server
from server import __version__

TRAINING_CORES = 3  # two slots on a 2-core machine, as the issue asks
RESULTS = Path(__file__).parent / "results" / "latest.json"
SECTIONS = (
    "fit",
    "first_answer",
    "ingest",
    "parallel",
    "predict",
    "inline",
    "responsiveness",
    "progress",
    "cancel",
    "priority",
    "observability",
    "dask",
    "compiled",
    "tail",
    "ceiling",
    "profile",
    "versions",
    "loading",
    "dashboard",
    "automl",
    "hostile",
    "explain",
    "replicas",
    "fit_phases",
    "real_tables",
    "monitoring",
    "sustained",
)


class Record:
    """Each section's results, the tables it showed, and how long it took."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def keep(self, key: str, measure: Callable[[], Any]) -> None:
        """Run a section; one that fails is recorded as failed and the run goes on."""
        try:
            value = measure()
        except Exception as error:
            traceback.print_exc()
            value = {"failed": f"{type(error).__name__}: {error}"}
        self._done(key, value)

    async def keep_async(self, key: str, measure: Callable[[], Awaitable[Any]]) -> None:
        try:
            value = await measure()
        except Exception as error:
            traceback.print_exc()
            value = {"failed": f"{type(error).__name__}: {error}"}
        self._done(key, value)

    def _done(self, key: str, value: Any) -> None:
        now = time.perf_counter()
        self.results[key], self.tables[key] = value, take_tables()
        self.seconds[key], self._since = round(now - self._since, 1), now


def machine() -> dict[str, Any]:
    """What the page says the run was made on, and at which commit."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or platform.machine(),
    ) if Path("/proc/cpuinfo").exists() else platform.machine()  # fmt: skip

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent
        )
        return done.stdout.strip()

    return {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "version": __version__,
    }


async def run(sections: set[str], models_dir: Path, url: str, record: Record) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=3)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if "fit" in sections:
            await record.keep_async("fit_overhead", lambda: fit_overhead.fit_overhead(session, url))
        if "first_answer" in sections:
            await record.keep_async("first_answer", lambda: first_answer.first_answer(session, url))
        if "ingest" in sections:
            await record.keep_async("ingest", lambda: ingest.ingest(session, url))
        if "cancel" in sections:
            await record.keep_async("cancel", lambda: jobs.cancel_latency(session, url))
        if "parallel" in sections:
            await record.keep_async(
                "parallel", lambda: training.parallel_training(session, url, TRAINING_CORES - 1)
            )
        if sections & {"predict", "inline", "responsiveness", "compiled"}:
            rows = await serving.train_models(session, url)
            if "predict" in sections:
                await record.keep_async(
                    "predict", lambda: serving.throughput(session, url, models_dir, rows)
                )
            if "inline" in sections:
                await record.keep_async(
                    "inline", lambda: serving.inline_baseline(session, url, models_dir, rows)
                )
            if "compiled" in sections:
                await record.keep_async(
                    "compiled", lambda: compiled.compiled_serving(session, url, models_dir)
                )
            if "responsiveness" in sections:  # last: it leaves long fits running
                await record.keep_async(
                    "responsiveness",
                    lambda: serving.responsiveness(session, url, TRAINING_CORES - 1, rows),
                )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--only", default=None, help="comma-separated sections")
    only = options.parse_args().only
    sections = set((only or ",".join(SECTIONS)).split(","))
    # A run of some sections is saved apart: the full run's results stay one run.
    results = RESULTS if only is None else RESULTS.parent / f"only-{only.replace(',', '-')}.json"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"server: TRAINING_CORES={TRAINING_CORES}, load generator: this process (aiohttp)"
    )
    record = Record()
    about = machine()
    with tempfile.TemporaryDirectory() as directory:
        models_dir = Path(directory) / "models"
        env = {"MAX_INFERENCE_MODELS": "10"}
        with uvicorn_server(models_dir, training_cores=TRAINING_CORES, env=env) as (url, _):
            asyncio.run(run(sections, models_dir, url, record))
        if "fit_phases" in sections:  # in-process, the demos' models
            record.keep("fit_phases", lambda: fit_phases.fit_phases())
        if "first_answer" in sections:  # in-process, with no server running beside it
            record.keep("forest_conversion", lambda: first_answer.forest_conversion())
        if "progress" in sections:  # in-process, with no server running beside it
            record.keep("progress_overhead", lambda: jobs.progress_overhead())
        if "priority" in sections:  # a server of its own for each policy
            record.keep("priority", lambda: jobs.priority(Path(directory) / "priority"))
        if "observability" in sections:  # four servers of its own, side by side
            observability_dir = Path(directory) / "observability"
            observability_dir.mkdir()
            record.keep("observability", lambda: observability.overhead(observability_dir))
        if "tail" in sections:  # four servers of its own, under wrk
            record.keep("tail", lambda: tail.tail())
        if "ceiling" in sections:  # the service and the reference apps, under wrk
            record.keep("ceiling", lambda: ceiling.ceiling(Path(directory) / "ceiling"))
        if "profile" in sections:  # py-spy on the service and the previous design
            (Path(directory) / "profile").mkdir()
            record.keep("profile", lambda: profile.profile(Path(directory) / "profile"))
        if "versions" in sections:  # a server of its own, its cap at 1
            record.keep("versions", lambda: versions.swap_cost(Path(directory) / "versions"))
        if "loading" in sections:  # two servers of their own, lazy and eager
            (Path(directory) / "loading").mkdir()
            record.keep("loading", lambda: loading.load_cost(Path(directory) / "loading"))
        if "dashboard" in sections:  # a server of its own, under wrk
            (Path(directory) / "dashboard").mkdir()
            record.keep(
                "dashboard", lambda: dashboard.dashboards_cost(Path(directory) / "dashboard")
            )
        if "automl" in sections:  # a server with one slot, then one with two
            (Path(directory) / "automl").mkdir()
            record.keep("automl", lambda: automl.search_speedup(Path(directory) / "automl"))
        if "hostile" in sections:  # the design before issue 27's fixes and after, under wrk
            (Path(directory) / "hostile").mkdir()
            record.keep("hostile", lambda: hostile.hostile_loads(Path(directory) / "hostile"))
        if "explain" in sections:  # a server of its own, five models
            (Path(directory) / "explain").mkdir()
            record.keep("explain", lambda: explain.explain_cost(Path(directory) / "explain"))
        if "replicas" in sections:  # a primary, two replicas and HAProxy, under wrk
            record.keep("replicas", lambda: replicas.replicas_section())
        if "real_tables" in sections:  # in-process, then a server of its own
            record.keep(
                "real_tables", lambda: real_tables.real_tables(Path(directory) / "real_tables")
            )
        if "monitoring" in sections:  # in-process, then a server of its own under wrk
            record.keep("monitoring", lambda: monitoring.monitoring(Path(directory) / "monitoring"))
        if "sustained" in sections:  # ten minutes per mode, a server of its own under wrk
            record.keep("sustained", lambda: sustained.sustained(10.0, None))
        if "dask" in sections:  # a cluster, and a server on each backend
            record.keep("dask", lambda: backends.compare(Path(directory) / "dask"))
    results.parent.mkdir(exist_ok=True)
    saved = {"machine": about, "seconds": record.seconds, "tables": record.tables}
    results.write_text(json.dumps({**saved, "results": record.results}, indent=2, default=str))
    print(
        f"\nsaved in {results.relative_to(Path.cwd()) if results.is_relative_to(Path.cwd()) else results}"
    )


if __name__ == "__main__":
    main()
