"""Serving replicas (docs/replicas.md): a real primary and two real replicas, each a
`model-server serve` process, on one temporary store. The module shares them; the tests run
in order, and the last one kills the primary and starts it again."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from server.http.routes import TABLES
from server.replication import manifest
from server.replication.manifest import FILE_NAME, Served
from server.store.signing import SigningKey
from tests.helpers import answered, fit_body, named, wait_for
from tests.servers import uvicorn_server

ROW = {"X": [fit_body("x")["X"][0]]}
FOLLOW_SECONDS = 5.0  # the bound for a load to reach both replicas
# Every answer this long after a move is the new version's: the bound a load has.
AFTER_MOVE_SECONDS = FOLLOW_SECONDS


@contextmanager
def replica(
    models: Path,
    primary: str,
    log: Path,
    env: dict[str, str] | None = None,
    ready_status: int = 200,
) -> Iterator[tuple[str, subprocess.Popen]]:
    env = {"SERVING_ROLE": "replica", "PRIMARY_URL": primary, **(env or {})}
    with uvicorn_server(models, env=env, log=log, ready_status=ready_status) as started:
        yield started


class Cluster:
    def __init__(self, models: Path, logs: Path) -> None:
        self.models, self.logs = models, logs
        self.stack = ExitStack()
        self.primary, self.primary_process = self.stack.enter_context(
            uvicorn_server(models, log=logs / "primary.log")
        )
        self.replicas: list[str] = []
        self.processes: list[subprocess.Popen] = []
        for index in range(2):
            self.start_replica(index)

    def start_replica(self, index: int) -> None:
        log = self.logs / f"replica-{index}-{time.monotonic_ns()}.log"
        url, process = self.stack.enter_context(replica(self.models, self.primary, log))
        if index < len(self.replicas):
            self.replicas[index], self.processes[index] = url, process
        else:
            self.replicas.append(url)
            self.processes.append(process)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.primary + path, json=body, timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    (root / "models").mkdir()
    started = Cluster(root / "models", root)
    with started.stack:
        yield started


def predict(url: str, name: str, **config: Any) -> httpx.Response:
    return httpx.post(url + "/predict", json={**ROW, **named(name, **config)}, timeout=30)


def served_version(url: str, name: str) -> int | None:
    answer = predict(url, name)
    return answer.json()["version"] if answer.status_code == 200 else None


def fit_and_load(cluster: Cluster, name: str, new_version: bool = False) -> int:
    body = fit_body(name)
    body["config"]["new_version"] = new_version
    fitted = cluster.post("/fit", body)
    assert fitted.status_code == 201, fitted.text
    version = fitted.json()["version"]
    if not new_version:
        assert cluster.post("/load", named(name)).status_code == 200
    return int(version)


def store_bytes(models: Path) -> dict[str, str]:
    return {
        str(path.relative_to(models)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(models.rglob("*"))
        if path.is_file()
    }


def test_a_load_on_the_primary_is_served_by_both_replicas(cluster: Cluster) -> None:
    fit_and_load(cluster, "alpha")
    expected = answered(predict(cluster.primary, "alpha"))
    for url in cluster.replicas:
        wait_for(lambda u=url: served_version(u, "alpha") == 1, FOLLOW_SECONDS, "a replica")
        assert answered(predict(url, "alpha")) == expected
        health = httpx.get(url + "/health").json()
        assert health["role"] == "replica" and health["following"]["problems"] == []
        assert health["following"]["behind_seconds"] == 0


def test_every_writing_call_is_refused_on_a_replica_and_the_store_is_untouched(
    cluster: Cluster,
) -> None:
    before = store_bytes(cluster.models)
    refused = []
    for spec in [spec for table in TABLES for spec in table.specs]:
        if spec.access != "management":
            continue
        path = spec.path.format(name="alpha", version=1, alias="staging", job_id="x", search_id="x")
        body = {**fit_body("alpha"), "version": 1}
        answer = httpx.request(spec.method, cluster.replicas[0] + path, json=body, timeout=30)
        assert answer.status_code == 409, (spec.method, path, answer.text)
        assert "replica" in answer.json()["detail"] and cluster.primary in answer.json()["detail"]
        refused.append(f"{spec.method} {spec.path}")
    assert len(refused) >= 13  # /fit, /automl, /load, /unload, /remove, versions, aliases...
    assert store_bytes(cluster.models) == before
    assert predict(cluster.replicas[0], "alpha").status_code == 200


def test_a_replicas_captured_rows_reach_the_primarys_report(cluster: Cluster) -> None:
    fit_and_load(cluster, "watched")
    turned = httpx.put(cluster.primary + "/models/watched/monitoring", json={"capture": True})
    assert turned.status_code == 200
    replica = cluster.replicas[0]
    wait_for(lambda: served_version(replica, "watched") == 1, FOLLOW_SECONDS, "the replica")
    sent: list[str] = []

    def reached() -> bool:  # the setting reaches the replica within a sync: predict until then
        answer = predict(replica, "watched")
        assert answer.status_code == 200
        sent.append(answer.json()["request_id"])
        report = httpx.get(cluster.primary + "/models/watched/monitoring").json()
        return bool(report["versions"]) and report["versions"][0]["captured"] > 0

    wait_for(reached, 30, "a replica's captured row in the primary's report")
    monitoring = cluster.models.parent / "monitoring"
    written = [p for p in monitoring.rglob("*.parquet") if "watched" in p.parts]
    assert written and all(p.relative_to(monitoring).parts[0] != "primary" for p in written)
    assert not list(cluster.models.rglob("*.parquet"))  # never inside MODELS_PATH
    exported = httpx.get(cluster.primary + "/models/watched/monitoring/rows")
    ids = set(pq.read_table(io.BytesIO(exported.content)).column("_request_id").to_pylist())
    assert ids & set(sent)  # every request of "watched" went to the replica
    assert cluster.post("/remove", named("watched")).status_code == 200  # a loaded slot back
    assert not [p for p in monitoring.rglob("*") if "watched" in p.parts]


def test_promote_and_rollback_under_load_fail_no_request(cluster: Cluster) -> None:
    fit_and_load(cluster, "beta")
    assert fit_and_load(cluster, "beta", new_version=True) == 2
    for url in cluster.replicas:
        wait_for(lambda u=url: served_version(u, "beta") == 1, FOLLOW_SECONDS, "a replica")
    answers: list[tuple[float, int, int | None]] = []  # (when, status, version)
    stop = threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/predict", json={**ROW, **named("beta")})
                version = answer.json().get("version") if answer.status_code == 200 else None
                answers.append((time.monotonic(), answer.status_code, version))

    threads = [threading.Thread(target=hammer, args=(url,)) for url in cluster.replicas * 2]
    for thread in threads:
        thread.start()
    try:
        moves = []  # (asked, answered, version): replicas may follow before the answer
        for path, body, version in (
            ("/models/beta/promote", {"version": 2}, 2),
            ("/models/beta/rollback", None, 1),
        ):
            asked = time.monotonic()
            answer = cluster.post(path, body)
            assert answer.status_code == 200, answer.text
            moved = time.monotonic()
            moves.append((asked, moved, version))
            wait_for(
                lambda m=moved: any(t > m + AFTER_MOVE_SECONDS for t, _, _ in answers[-4:]),
                30, "answers after the move",
            )  # fmt: skip
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert [status for _, status, _ in answers if status != 200] == []
    for index, (_, moved, version) in enumerate(moves):
        # Until the next move was asked for (it may be served before its answer came back).
        until = moves[index + 1][0] if index + 1 < len(moves) else float("inf")
        settled = [v for t, _, v in answers if moved + AFTER_MOVE_SECONDS < t < until]
        assert settled and set(settled) == {version}, (
            f"move to {version}: {late(answers, moved, until, version)}"
        )
    assert len(answers) > 100


def late(
    answers: list[tuple[float, int, int | None]], moved: float, until: float, version: int
) -> str:
    """When, after a move, the other version last answered: what a failure needs to say."""
    others = [t - moved for t, _, v in answers if moved < t < until and v != version]
    return f"another version answered until {max(others, default=0):.2f} s after the move"


def test_a_replica_killed_mid_swap_restarts_ready_with_both_models(cluster: Cluster) -> None:
    promote = threading.Thread(target=cluster.post, args=("/models/beta/promote", {"version": 2}))
    promote.start()
    os.kill(cluster.processes[1].pid, signal.SIGKILL)
    promote.join()
    cluster.processes[1].wait(10)
    cluster.start_replica(1)  # returns once /health answers: ready
    url = cluster.replicas[1]
    assert served_version(url, "alpha") == 1
    assert served_version(url, "beta") == 2
    assert httpx.get(url + "/health").json()["following"]["problems"] == []


def test_an_unload_on_the_primary_reaches_the_replicas(cluster: Cluster) -> None:
    assert cluster.post("/unload", named("alpha")).status_code == 200
    for url in cluster.replicas:
        wait_for(lambda u=url: predict(u, "alpha").status_code == 409, FOLLOW_SECONDS, "unload")
        detail = predict(url, "alpha").json()["detail"]
        assert "not loaded" in detail and cluster.primary in detail
        assert served_version(url, "beta") == 2


def test_a_corrupted_new_version_is_refused_while_the_old_one_serves(cluster: Cluster) -> None:
    fit_and_load(cluster, "gamma")
    assert fit_and_load(cluster, "gamma", new_version=True) == 2
    for url in cluster.replicas:
        wait_for(lambda u=url: served_version(u, "gamma") == 1, FOLLOW_SECONDS, "a replica")
    for process in cluster.processes:  # the replicas stand still while the file goes bad
        process.send_signal(signal.SIGSTOP)
    try:
        assert cluster.post("/models/gamma/promote", {"version": 2}).status_code == 200
        for path in (cluster.models / "gamma").glob("2.*"):
            if path.suffix != ".json":  # the estimator and its compiled copy
                data = bytearray(path.read_bytes())
                data[len(data) // 2] ^= 0xFF
                path.write_bytes(bytes(data))
    finally:
        for process in cluster.processes:
            process.send_signal(signal.SIGCONT)
    for url in cluster.replicas:

        def refused(u: str = url) -> bool:
            problems = httpx.get(u + "/health").json()["following"]["problems"]
            return [(p["name"], p["version"]) for p in problems] == [("gamma", 2)]

        wait_for(refused, FOLLOW_SECONDS, "the replica to refuse version 2")
        health = httpx.get(url + "/health").json()["following"]
        assert "untrusted" in health["problems"][0]["error"]
        assert health["behind_seconds"] > 0
        assert served_version(url, "gamma") == 1 and served_version(url, "beta") == 2
        metrics = httpx.get(url + "/metrics").text
        assert (
            'model_server_replica_unfollowed_version{name="gamma",reason="UntrustedModel",'
            'version="2"} 1.0' in metrics
        )


def _put_back(models: Path, content: bytes) -> None:
    """Replace the serving set as a person with write access would (atomically)."""
    temporary = models / ".put-back"
    temporary.write_bytes(content)
    os.replace(temporary, models / FILE_NAME)


def _set_problem(url: str) -> str:
    return str(httpx.get(url + "/health").json()["following"].get("set_problem", ""))


def test_an_old_or_missing_serving_set_never_takes_a_replica_back(cluster: Cluster) -> None:
    """Issue 37, item 4: a copy of an older set put back, or the set deleted, is reported
    and changes nothing a replica serves."""
    old = (cluster.models / FILE_NAME).read_bytes()
    assert cluster.post("/unload", named("gamma")).status_code == 200
    for url in cluster.replicas:
        wait_for(lambda u=url: predict(u, "gamma").status_code == 409, FOLLOW_SECONDS, "unload")
    generation = httpx.get(cluster.replicas[0] + "/health").json()["following"]["generation"]
    _put_back(cluster.models, old)
    for url in cluster.replicas:
        wait_for(lambda u=url: "older" in _set_problem(u), FOLLOW_SECONDS, "the report")
        health = httpx.get(url + "/health")
        assert health.status_code == 200  # it serves the newer set it had
        assert health.json()["following"]["generation"] == generation
        assert predict(url, "gamma").status_code == 409 and served_version(url, "beta") == 2
    (cluster.models / FILE_NAME).unlink()
    for url in cluster.replicas:
        wait_for(lambda u=url: "missing" in _set_problem(u), FOLLOW_SECONDS, "the report")
        assert served_version(url, "beta") == 2
    assert cluster.post("/load", named("alpha")).status_code == 200  # a newer set
    for url in cluster.replicas:
        wait_for(lambda u=url: served_version(u, "alpha") == 1, FOLLOW_SECONDS, "the load")
        assert _set_problem(url) == ""


def test_a_malformed_serving_set_is_a_reported_problem_at_start_up_too(cluster: Cluster) -> None:
    """Issue 37, items 3, 10 and 11: nested past Python's stack, too large, or signed with
    another key, the set is a problem a replica reports while it serves what it had; a
    replica that never could read one starts all the same, and is not ready (503)."""
    good = (cluster.models / FILE_NAME).read_bytes()
    try:
        for content, expected in (
            (b"[" * 200_000, "can't be read"),
            (b" " * (17 * 2**20), "more than"),
        ):
            _put_back(cluster.models, content)
            for url in cluster.replicas:
                wait_for(lambda u=url, e=expected: e in _set_problem(u), FOLLOW_SECONDS, expected)
                assert httpx.get(url + "/health").status_code == 200
                assert served_version(url, "beta") == 2
            log = cluster.logs / f"late-{len(content)}.log"
            with replica(cluster.models, cluster.primary, log, ready_status=503) as (url, _):
                health = httpx.get(url + "/health").json()
                assert (
                    health["status"] == "unready" and expected in health["following"]["set_problem"]
                )
                assert predict(url, "beta").status_code == 409
    finally:
        _put_back(cluster.models, good)
    other_key = {"MODEL_SIGNING_KEY_FILE": str(cluster.logs / "another.key")}
    (cluster.logs / "another.key").write_text(secrets.token_hex(32))
    log = cluster.logs / "other-key.log"
    with replica(cluster.models, cluster.primary, log, env=other_key, ready_status=503) as (url, _):
        assert "another key" in _set_problem(url)


def test_a_signed_set_with_values_out_of_range_is_refused(tmp_path: Path) -> None:
    """A set signed with the key but holding `Infinity`: refused as malformed, not raised."""
    key = SigningKey.generate()
    manifest.write(tmp_path, key, {"m": Served(1, {}, {1: "tag"})}, 5)
    content = json.loads((tmp_path / FILE_NAME).read_text())
    content.pop("signature")
    content["models"]["m"]["current"] = float("inf")
    signature = {
        "key_id": key.key_id,
        "tag": key.tag("serving-set", [manifest._canonical(content)]),
    }
    (tmp_path / FILE_NAME).write_text(json.dumps({**content, "signature": signature}))
    with pytest.raises(manifest.UnreadableSet, match="malformed"):
        manifest.read(tmp_path, key)


def test_a_sigkilled_primary_leaves_the_replicas_serving(cluster: Cluster) -> None:
    os.kill(cluster.primary_process.pid, signal.SIGKILL)
    cluster.primary_process.wait(10)
    checked = [
        httpx.get(url + "/health").json()["following"]["checked_at"] for url in cluster.replicas
    ]
    (cluster.models / FILE_NAME).touch()  # the replicas read the set again after the death
    for url, before in zip(cluster.replicas, checked, strict=True):

        def read_again(u: str = url, b: str = before) -> bool:
            return httpx.get(u + "/health").json()["following"]["checked_at"] > b

        wait_for(read_again, FOLLOW_SECONDS, "the replica to read the set again")
        assert served_version(url, "beta") == 2
        assert httpx.get(url + "/models").status_code == 200

    # A primary started again serves nothing (models survive a restart as `trained`) and
    # leaves the set as it was: a restart alone never empties the replicas.
    published = (cluster.models / FILE_NAME).read_bytes()
    with uvicorn_server(cluster.models, log=cluster.logs / "primary-again.log") as (url, _):
        assert httpx.get(url + "/models/beta").json()["status"] == "trained"
        assert (cluster.models / FILE_NAME).read_bytes() == published
        assert [served_version(u, "beta") for u in cluster.replicas] == [2, 2]
