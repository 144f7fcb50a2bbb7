"""`make bench`: every benchmark against a real server on 127.0.0.1, as ratios to the
in-process floor. Prints tables and saves them in bench/results/latest.json.

    python -m bench.run [--only fit,first_answer,ingest,parallel,predict,inline,responsiveness,
                                progress,cancel,priority,observability,dask,compiled,tail,
                                ceiling,profile,versions,loading,dashboard,automl,hostile,
                                explain,replicas]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
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
    hostile,
    ingest,
    jobs,
    loading,
    observability,
    profile,
    replicas,
    serving,
    tail,
    training,
    versions,
)
from devtools.local_server import uvicorn_server

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
)


async def run(sections: set[str], models_dir: Path, url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=3)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if "fit" in sections:
            results["fit_overhead"] = await training.fit_overhead(session, url)
        if "first_answer" in sections:
            results["first_answer"] = await first_answer.first_answer(session, url)
        if "ingest" in sections:
            results["ingest"] = await ingest.ingest(session, url)
        if "cancel" in sections:
            results["cancel"] = await jobs.cancel_latency(session, url)
        if "parallel" in sections:
            results["parallel"] = await training.parallel_training(session, url, TRAINING_CORES - 1)
        if sections & {"predict", "inline", "responsiveness", "compiled"}:
            rows = await serving.train_models(session, url)
            if "predict" in sections:
                results["predict"] = await serving.throughput(session, url, models_dir, rows)
            if "inline" in sections:
                results["inline"] = await serving.inline_baseline(session, url, models_dir, rows)
            if "compiled" in sections:
                results["compiled"] = await compiled.compiled_serving(session, url, models_dir)
            if "responsiveness" in sections:  # last: it leaves long fits running
                results["responsiveness"] = await serving.responsiveness(
                    session, url, TRAINING_CORES - 1, rows
                )
    return results


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    sections = set(options.parse_args().only.split(","))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"server: TRAINING_CORES={TRAINING_CORES}, load generator: this process (aiohttp)"
    )
    with tempfile.TemporaryDirectory() as directory:
        models_dir = Path(directory) / "models"
        env = {"MAX_INFERENCE_MODELS": "10"}
        with uvicorn_server(models_dir, training_cores=TRAINING_CORES, env=env) as (url, _):
            results = asyncio.run(run(sections, models_dir, url))
        if "first_answer" in sections:  # in-process, with no server running beside it
            results["forest_conversion"] = first_answer.forest_conversion()
        if "progress" in sections:  # in-process, with no server running beside it
            results["progress_overhead"] = jobs.progress_overhead()
        if "priority" in sections:  # a server of its own for each policy
            results["priority"] = jobs.priority(Path(directory) / "priority")
        if "observability" in sections:  # four servers of its own, side by side
            observability_dir = Path(directory) / "observability"
            observability_dir.mkdir()
            results["observability"] = observability.overhead(observability_dir)
        if "tail" in sections:  # four servers of its own, under wrk
            results["tail"] = tail.tail()
        if "ceiling" in sections:  # the service and the reference apps, under wrk
            results["ceiling"] = ceiling.ceiling(Path(directory) / "ceiling")
        if "profile" in sections:  # py-spy on the service and the previous design
            (Path(directory) / "profile").mkdir()
            results["profile"] = profile.profile(Path(directory) / "profile")
        if "versions" in sections:  # a server of its own, its cap at 1
            results["versions"] = versions.swap_cost(Path(directory) / "versions")
        if "loading" in sections:  # two servers of their own, lazy and eager
            (Path(directory) / "loading").mkdir()
            results["loading"] = loading.load_cost(Path(directory) / "loading")
        if "dashboard" in sections:  # a server of its own, under wrk
            (Path(directory) / "dashboard").mkdir()
            results["dashboard"] = dashboard.dashboards_cost(Path(directory) / "dashboard")
        if "automl" in sections:  # a server with one slot, then one with two
            (Path(directory) / "automl").mkdir()
            results["automl"] = automl.search_speedup(Path(directory) / "automl")
        if "hostile" in sections:  # the design before issue 27's fixes and after, under wrk
            (Path(directory) / "hostile").mkdir()
            results["hostile"] = hostile.hostile_loads(Path(directory) / "hostile")
        if "explain" in sections:  # a server of its own, five models
            (Path(directory) / "explain").mkdir()
            results["explain"] = explain.explain_cost(Path(directory) / "explain")
        if "replicas" in sections:  # a primary, two replicas and HAProxy, under wrk
            results["replicas"] = replicas.replicas_section()
        if "dask" in sections:  # a cluster, and a server on each backend
            results["dask"] = backends.compare(Path(directory) / "dask")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(
        f"\nsaved in {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )


if __name__ == "__main__":
    main()
