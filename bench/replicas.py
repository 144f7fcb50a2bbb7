"""What replicas buy: 1-row predictions through HAProxy to one and two replicas, beside the
single server with no balancer, and how long a promote takes to reach every replica.

One store, one primary, two replicas (`SERVING_ROLE=replica`, each a `model-server serve`
process), and Debian's HAProxy with deploy/haproxy/haproxy.cfg made local: the same balancing,
checks and retries, its servers on 127.0.0.1 and two front ends (one replica, both).

- Throughput: wrk (one thread, CONNECTIONS connections) on a 1-row LogisticRegression, the
  three targets alternated ROUNDS times; medians with their range. Beside each, the CPU the
  run cost each process (psutil: user+system over the run, per request): where the 2 cores
  went, and what more cores would buy.
- Following: MOVES promotes and rollbacks on the primary while LOAD_THREADS threads predict
  through the balancer. For each move, the time from the primary's answer to the last replica
  answering from the new version (each replica asked directly, in a loop), and every failed
  request through the balancer.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from sklearn.datasets import make_classification

from bench import wrk
from bench.harness import show
from devtools.local_server import PROJECT_ROOT, free_port, uvicorn_server

ROUNDS = 3
SECONDS = 5
CONNECTIONS = 16
MOVES = 6
LOAD_THREADS = 4
CONFIG = PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
X, Y = make_classification(n_samples=1000, n_features=10, random_state=0)
ROW = {"X": X[:1].tolist(), "config": {"name": "lr"}}


def local_config(replicas: list[str], ports: dict[str, int]) -> str:
    """deploy/haproxy/haproxy.cfg on 127.0.0.1: no compose DNS, one front end per target."""
    text = CONFIG.read_text()
    defaults = text[: text.index("resolvers compose")]
    backend = text[re.search(r"^backend replicas", text, re.M).start() :]  # type: ignore[union-attr]
    checks = re.search(r"^\s*default-server .*$", backend, re.M).group(0)  # type: ignore[union-attr]
    checks = checks.replace("resolvers compose init-addr last,libc,none", "").rstrip()
    head = backend[: backend.index(checks)]
    parts = [defaults]
    for label, port in ports.items():
        count = 1 if label == "one" else len(replicas)
        servers = [
            f"    server replica-{i + 1} {url.removeprefix('http://')}"
            for i, url in enumerate(replicas[:count])
        ]
        parts.append(f"frontend {label}\n    bind 127.0.0.1:{port}\n    default_backend {label}\n")
        parts.append(
            "\n".join([head.replace("backend replicas", f"backend {label}"), checks, *servers])
        )
    return "\n".join(parts) + "\n"


@contextmanager
def balancer(
    directory: Path, replicas: list[str]
) -> Iterator[tuple[dict[str, str], psutil.Process]]:
    ports = {"one": free_port(), "two": free_port()}
    config = directory / "haproxy.cfg"
    config.write_text(local_config(replicas, ports))
    log = (directory / "haproxy.log").open("wb")
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=log)
    urls = {label: f"http://127.0.0.1:{port}" for label, port in ports.items()}
    try:
        deadline = time.monotonic() + 30
        while True:  # until both replicas have passed their checks
            try:
                seen = {
                    httpx.get(urls["two"] + "/health").headers.get("x-served-by") for _ in range(4)
                }
            except httpx.TransportError:
                seen = set()
            if seen == {"replica-1", "replica-2"}:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                problem = (directory / "haproxy.log").read_text()[-2000:]
                raise RuntimeError(f"HAProxy never reached both replicas (saw {seen}):\n{problem}")
            time.sleep(0.1)  # a poll's period
        yield urls, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """User+system CPU of each process and its children (a server's training processes),
    and of wrk (this process's children that have ended)."""
    spent = {}
    for label, process in processes.items():
        times = [process.cpu_times()] + [c.cpu_times() for c in process.children(recursive=True)]
        spent[label] = sum(t.user + t.system for t in times)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent["wrk"] = ended.ru_utime + ended.ru_stime
    return spent


def throughput(
    targets: dict[str, str], script: Path, processes: dict[str, psutil.Process]
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
    for url in targets.values():
        wrk.run(f"{url}/predict", script, CONNECTIONS, 1)  # warm
    for _ in range(ROUNDS):
        for label, url in targets.items():
            before = cpu_seconds(processes)
            run = wrk.run(f"{url}/predict", script, CONNECTIONS, SECONDS)
            after = cpu_seconds(processes)
            run.update(
                {f"cpu_ms_{p}": (after[p] - before[p]) * 1e3 / run["requests"] for p in after}
            )
            runs[label].append(run)
    results = {}
    for label, done in runs.items():
        rates = [r["per_second"] for r in done]
        p99s = [r["p99_ms"] for r in done]
        results[label] = {
            "per_second": statistics.median(rates),
            "per_second_range": [min(rates), max(rates)],
            "p99_ms": statistics.median(p99s),
            "p99_range_ms": [min(p99s), max(p99s)],
            **{
                key: statistics.median(r[key] for r in done)
                for key in done[0]
                if key.startswith("cpu_ms_")
            },
        }
    return results


def following(primary: str, replicas: list[str], through: str) -> dict[str, Any]:
    """Promote and roll back MOVES times under load; the time to the last replica, failures."""
    stop = threading.Event()
    failures: list[str] = []
    answered = [0]

    def load() -> None:
        with httpx.Client(base_url=through, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/predict", json=ROW)
                answered[0] += 1
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    def first_answer_from(url: str, version: int, since: float) -> float:
        with httpx.Client(base_url=url, timeout=30) as client:
            while client.post("/predict", json=ROW).json().get("version") != version:
                if time.monotonic() - since > 30:
                    raise RuntimeError(f"{url} never served version {version}")
            return time.monotonic() - since

    threads = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    delays = []
    try:
        for move in range(MOVES):
            path, body, version = (
                ("/models/lr/promote", {"version": 2}, 2)
                if move % 2 == 0
                else ("/models/lr/rollback", None, 1)
            )
            answer = httpx.post(primary + path, json=body, timeout=60)
            answered_at = time.monotonic()
            assert answer.status_code == 200, answer.text
            delays.append(max(first_answer_from(url, version, answered_at) for url in replicas))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return {
        "moves": MOVES,
        "to_last_replica_s": statistics.median(delays),
        "to_last_replica_range_s": [min(delays), max(delays)],
        "requests": answered[0],
        "failed": len(failures),
        "failures": failures[:5],
    }


def replicas_section() -> dict[str, Any]:
    missing = [tool for tool in ("wrk", "haproxy") if shutil.which(tool) is None]
    if missing:
        print(
            f"\nReplicas: skipped, {' and '.join(missing)} not installed (apt-get install {' '.join(missing)})"
        )
        return {"skipped": f"{', '.join(missing)} not installed"}
    fit = {
        "X": X.tolist(),
        "y": Y.tolist(),
        "config": {"name": "lr", "model_type": "LogisticRegression"},
    }
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        root = Path(directory)
        models = root / "models"
        primary, primary_process = stack.enter_context(
            uvicorn_server(models, log=root / "primary.log")
        )
        with httpx.Client(base_url=primary, timeout=120) as client:
            assert client.post("/fit", json=fit).status_code == 201
            assert (
                client.post(
                    "/fit", json={**fit, "config": {**fit["config"], "new_version": True}}
                ).status_code
                == 201
            )
            assert client.post("/load", json={"config": {"name": "lr"}}).status_code == 200
        replicas, processes = [], {"primary": psutil.Process(primary_process.pid)}
        for index in (1, 2):
            env = {"SERVING_ROLE": "replica", "PRIMARY_URL": primary}
            url, process = stack.enter_context(
                uvicorn_server(models, env=env, log=root / f"replica-{index}.log")
            )
            replicas.append(url)
            processes[f"replica_{index}"] = psutil.Process(process.pid)
        urls, haproxy = stack.enter_context(balancer(root, replicas))
        processes["haproxy"] = haproxy
        script = wrk.post_script(root / "predict.lua", json.dumps(ROW))
        targets = {
            "single server, no balancer": primary,
            "HAProxy, 1 replica": urls["one"],
            "HAProxy, 2 replicas": urls["two"],
        }
        results: dict[str, Any] = {"throughput": throughput(targets, script, processes)}
        results["following"] = following(primary, replicas, urls["two"])
    report(results)
    return results


def projection(cell: dict[str, float], cores: int = 8) -> str:
    """What `cores` cores would give, from the CPU one request cost each process here: an
    estimate, not a measurement. One core stays with the primary (training, management), the
    load comes from elsewhere, and the rest is shared by replicas and HAProxy as they cost."""
    replica = sum(v for k, v in cell.items() if k.startswith("cpu_ms_replica"))
    balancer = cell["cpu_ms_haproxy"]
    serving = cores - 1
    replicas = serving * replica / (replica + balancer)
    return (
        f"On {cores} cores (an estimate from 1 replica's CPU per request: {replica:.3f} ms, "
        f"HAProxy {balancer:.3f} ms): {replicas:.1f} replicas' worth of cores and "
        f"{serving - replicas:.1f} for HAProxy (nbthread), about "
        f"{serving / (replica + balancer) * 1e3:.0f} req/s, with the load generated elsewhere."
    )


def report(results: dict[str, Any]) -> None:
    cells = results["throughput"]
    single = cells["single server, no balancer"]["per_second"]
    rows = []
    for label, cell in cells.items():
        cpu = ", ".join(
            f"{k.removeprefix('cpu_ms_')} {v:.3f}"
            for k, v in cell.items()
            if k.startswith("cpu_ms_") and v >= 0.005
        )
        low, high = cell["per_second_range"]
        rows.append([label, f"{cell['per_second']:.0f} ({low:.0f}-{high:.0f})", f"{cell['per_second'] / single:.2f}",
                     f"{cell['p99_ms']:.2f} ({cell['p99_range_ms'][0]:.2f}-{cell['p99_range_ms'][1]:.2f})", cpu])  # fmt: skip
    show(
        f"Replicas: 1-row LogisticRegression, wrk -c{CONNECTIONS} for {SECONDS} s, 2 cores shared by every "
        f"process (median of {ROUNDS} alternated runs)",
        ["target", "req/s (min-max)", "x single", "p99 ms (min-max)", "CPU ms per request"],
        rows,
    )
    print(projection(cells["HAProxy, 1 replica"]))  # the least contended cell
    moved = results["following"]
    low, high = moved["to_last_replica_range_s"]
    show(
        f"Replicas: {moved['moves']} promotes and rollbacks on the primary under {LOAD_THREADS} threads of load "
        "through HAProxy",
        ["answered on the primary -> last replica serving it, s (min-max)", "requests", "failed"],
        [
            [
                f"{moved['to_last_replica_s']:.3f} ({low:.3f}-{high:.3f})",
                moved["requests"],
                moved["failed"],
            ]
        ],
    )
