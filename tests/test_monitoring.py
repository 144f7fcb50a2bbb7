"""Monitoring on a real server (docs/monitoring.md): capture on and off, sampling, feedback
by request id, key and file, live scores against the answers, drift on a shifted feature and
not on rows drawn like the training rows, a fit and an evaluation from the capture, export,
erasure, removal, a full queue, and a restart. One server for the module; the queue and the
restart have their own."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.local_server import uvicorn_server
from tests.helpers import wait_for

PLANS = ["basic", "plus", "pro"]
FEATURES = ["tenure", "plan", "region"]
MODEL = "LogisticRegression"


def people(rows: int, seed: int, shifted: bool = False, start: int = 0) -> list[dict[str, Any]]:
    """Customers as records: `tenure` (months, some missing), `plan` (text), `region`, and an
    `id` that is never a feature. Shifted: long tenures and a plan the training never saw."""
    rng = np.random.default_rng(seed)
    tenure = rng.normal(60 if shifted else 24, 8, rows).round(1)
    plans = ["enterprise", "pro"] if shifted else PLANS
    found = []
    for i in range(rows):
        found.append(
            {
                "id": f"c{start + i}",
                "tenure": None if i % 17 == 5 else float(tenure[i]),
                "plan": str(rng.choice(plans)),
                "region": str(rng.choice(["north", "south"])),
            }
        )
    return found


def truth(person: dict[str, Any]) -> str:
    tenure = person["tenure"] if person["tenure"] is not None else 24
    return "stays" if tenure + (10 if person["plan"] == "pro" else 0) > 26 else "leaves"


def features(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in records]


class Server:
    def __init__(self, url: str, models: Path) -> None:
        self.url, self.models = url, models
        self.monitoring = models.parent / "monitoring"
        self.client = httpx.Client(base_url=url, timeout=120)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def fit(self, name: str, **config: Any) -> httpx.Response:
        train = people(400, seed=1)
        body = {
            "records": features(train),
            "y": [truth(p) for p in train],
            "config": {"name": name, "model_type": MODEL, "validation_fraction": 0.25, **config},
        }
        return self.client.post("/fit", json=body)

    def predict(self, name: str, records: list[dict[str, Any]], **config: Any) -> httpx.Response:
        return self.client.post(
            "/predict", json={"records": records, "config": {"name": name, **config}}
        )

    def capture(self, name: str, **setting: Any) -> httpx.Response:
        return self.client.put(f"/models/{name}/monitoring", json={"capture": True, **setting})

    def report(self, name: str) -> dict[str, Any]:
        answer = self.client.get(f"/models/{name}/monitoring")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def version(self, name: str, version: int = 1) -> dict[str, Any]:
        found = [v for v in self.report(name)["versions"] if v["version"] == version]
        return found[0] if found else {"captured": 0, "labelled": 0, "dropped": 0}

    def wait_captured(self, name: str, rows: int, version: int = 1) -> dict[str, Any]:
        wait_for(lambda: self.version(name, version)["captured"] >= rows, 30, f"{rows} rows")
        return self.version(name, version)

    def exported(self, name: str) -> Any:
        answer = self.client.get(f"/models/{name}/monitoring/rows")
        assert answer.status_code == 200, answer.text
        return pq.read_table(io.BytesIO(answer.content))

    def feedback(self, name: str, **body: Any) -> httpx.Response:
        return self.client.post(f"/models/{name}/feedback", json=body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("monitoring")
    env = {"CAPTURE_FLUSH_SECONDS": "0.1", "MAX_INFERENCE_MODELS": "4"}
    running = uvicorn_server(root / "models", env=env, log=root / "server.log")
    with running as (url, _), Server(url, root / "models") as started:
        for name in ("churn", "steady", "shifted"):
            assert started.fit(name).status_code == 201
            loaded = started.client.post("/load", json={"config": {"name": name}})
            assert loaded.status_code == 200
        yield started


def test_nothing_is_captured_until_capture_is_on(server: Server) -> None:
    assert server.predict("churn", features(people(3, seed=2))).status_code == 200
    refused = server.feedback("churn", request_id="anything", y=["stays"])
    assert refused.status_code == 409 and "never had capture on" in refused.json()["detail"]
    assert server.client.put("/models/nobody/monitoring", json={"capture": True}).status_code == 404
    bad = server.client.put("/models/churn/monitoring", json={"capture": True, "sample_rate": 0})
    assert bad.status_code == 422
    report = server.report("churn")
    assert report["capture"] is False and report["versions"] == []


def test_captured_rows_are_the_request_as_sent_with_its_answers(server: Server) -> None:
    setting = server.capture("churn", capture_exclude=["region"]).json()
    assert setting == {
        "name": "churn",
        "capture": True,
        "sample_rate": 1.0,
        "capture_exclude": ["region"],
    }
    records = people(5, seed=3, start=1000)
    records[1]["plan"] = "platinum"  # unseen: answered as missing, kept as the text it was
    records[2]["plan"] = None
    answer = server.predict("churn", records, key="id", probabilities=True)
    assert answer.status_code == 200, answer.text
    plain = server.predict("churn", records[:1])  # captured with probabilities, answered without
    assert "probabilities" not in plain.json()
    server.wait_captured("churn", 6)
    rows = server.exported("churn").to_pylist()
    mine = [row for row in rows if row["_request_id"] == answer.headers["x-request-id"]]
    assert [row["_row"] for row in mine] == [0, 1, 2, 3, 4]
    assert [row["plan"] for row in mine] == [r["plan"] for r in records]
    assert [row["tenure"] for row in mine] == [r["tenure"] for r in records]
    assert all("region" not in row and "id" not in row for row in mine)
    assert [row["_key"] for row in mine] == [r["id"] for r in records]
    assert [row["_prediction"] for row in mine] == answer.json()["predictions"]
    assert [row["_probabilities"] for row in mine] == answer.json()["probabilities"]
    assert {row["_version"] for row in mine} == {1}
    key_feature = server.predict("churn", records, key="tenure")
    assert key_feature.status_code == 422 and "a feature of model" in key_feature.json()["detail"]
    no_names = server.client.post(
        "/predict", json={"X": [[1.0, "pro", "north"]], "config": {"name": "churn", "key": "id"}}
    )
    assert no_names.status_code == 422


def test_feedback_by_id_key_and_file_with_its_refusals(server: Server) -> None:
    records = people(4, seed=4, start=2000)
    answer = server.predict("churn", records, key="id")
    request_id = answer.json()["request_id"]
    labels = [truth(r) for r in records]
    server.wait_captured("churn", 10)
    by_id = server.feedback("churn", request_id=request_id, y=labels)
    assert by_id.json() == {
        "name": "churn",
        "matched": 4,
        "pending": 0,
        "unmatched": 0,
        "unmatched_examples": [],
    }
    too_few = server.feedback("churn", request_id=request_id, y=labels[:3])
    assert too_few.status_code == 422 and "had 4 captured rows" in too_few.json()["detail"]
    outside = server.feedback("churn", request_id=request_id, y=["maybe"] * 4)
    assert outside.status_code == 422 and "'maybe'" in outside.json()["detail"]
    unknown = server.feedback("churn", request_id="no-such-request", y=["stays"])
    assert unknown.json()["unmatched"] == 1 and unknown.json()["unmatched_examples"] == [
        "no-such-request"
    ]
    by_key = server.feedback(
        "churn", keys=["c2000", "c2001", "nobody"], y=["stays", "stays", "leaves"]
    )
    assert by_key.json()["matched"] == 2 and by_key.json()["unmatched_examples"] == ["nobody"]
    both = server.feedback("churn", request_id=request_id, keys=["c2000"], y=["stays"])
    assert both.status_code == 422
    csv = b"id,target\nc2002,leaves\nc2003,stays\n"
    files = {"file": ("labels.csv", csv, "text/csv")}
    by_file = server.client.post(
        "/models/churn/feedback", files=files, data={"config": '{"key": "id"}', "target": "target"}
    )
    assert by_file.status_code == 200, by_file.text
    assert by_file.json()["matched"] == 2
    rows = {r["_key"]: r["_label"] for r in server.exported("churn").to_pylist() if r["_key"]}
    # the last label wins: c2000 and c2001 by key after the id's, c2002/3 by the file
    assert [rows[f"c{2000 + i}"] for i in range(4)] == ["stays", "stays", "leaves", "stays"]
    assert server.feedback("nobody", request_id=request_id, y=labels).status_code == 404


def test_live_accuracy_is_that_of_the_answers_against_the_labels(server: Server) -> None:
    records = people(60, seed=5, start=3000)
    answers = []
    for person in records:  # one request each: labelled by request id
        answer = server.predict("churn", [person])
        answers.append((answer.json()["request_id"], answer.json()["predictions"][0]))
    server.wait_captured("churn", 70)
    labelled = 0
    for (request_id, _), person in zip(answers[:40], records, strict=False):
        assert server.feedback("churn", request_id=request_id, y=[truth(person)]).status_code == 200
        labelled += 1
    rows = server.exported("churn").to_pylist()
    pairs = [(r["_prediction"], r["_label"]) for r in rows if r["_label"] is not None]
    by_hand = sum(p == t for p, t in pairs) / len(pairs)
    version = server.version("churn")
    assert version["labelled"] == len(pairs) >= labelled
    assert version["live"]["accuracy"] == pytest.approx(by_hand, abs=1e-12)
    assert set(version["live"]) >= {"accuracy", "balanced_accuracy", "roc_auc", "log_loss"}
    assert set(version["validation"]) >= {"accuracy", "roc_auc", "log_loss"}
    assert (
        version["training_classes"].keys()
        == version["predicted_classes"].keys()
        == {"stays", "leaves"}
    )
    samples = [
        sample
        for family in text_string_to_metric_families(server.client.get("/metrics").text)
        for sample in family.samples
    ]
    metrics = {(s.name, s.labels.get("name"), s.labels.get("version")): s.value for s in samples}
    assert metrics[("model_server_live_accuracy", "churn", "1")] == pytest.approx(by_hand)
    assert metrics[("model_server_labelled_rows", "churn", "1")] == len(pairs)
    assert metrics[("model_server_captured_rows_total", "churn", "1")] >= 70
    monitoring = [s for s in samples if s.labels.get("name") == "churn"]
    assert monitoring and all(set(s.labels) <= {"name", "version"} for s in monitoring)


def test_drift_is_found_on_a_shifted_feature_and_not_on_rows_like_the_training_rows(
    server: Server,
) -> None:
    for name in ("steady", "shifted"):
        assert server.capture(name).status_code == 200
    assert server.predict("steady", features(people(400, seed=6))).status_code == 200
    assert server.predict("shifted", features(people(400, seed=6, shifted=True))).status_code == 200
    steady = server.wait_captured("steady", 400)["drift"]
    shifted = server.wait_captured("shifted", 400)["drift"]
    assert steady["drifted"] == 0, steady
    assert all(f["psi"] < 0.2 and f["drifted"] is False for f in steady["features"])
    assert shifted["drifted"] == 2 and shifted["max_psi"] >= 0.2, shifted
    ranked = [(f["name"], f["kind"], f["drifted"]) for f in shifted["features"]]
    assert set(ranked[:2]) == {("tenure", "numeric", True), ("plan", "categorical", True)}
    assert ranked[2] == ("region", "categorical", False)
    assert [f["psi"] for f in shifted["features"]] == sorted(
        (f["psi"] for f in shifted["features"]), reverse=True
    )
    assert all(0 <= f["p_value"] <= 1 for f in shifted["features"])
    assert shifted["features"][0]["p_value"] < 1e-6


def test_a_fit_and_an_evaluation_from_the_capture_use_exactly_the_labelled_rows(
    server: Server,
) -> None:
    rows = [r for r in server.exported("churn").to_pylist() if r["_label"] is not None]
    source = {"name": "churn"}
    config = {"name": "churn", "model_type": MODEL, "new_version": True, "from_capture": source}
    fit = server.client.post("/fit", json={"config": config})
    assert fit.status_code == 201, fit.text
    trained = fit.json()
    assert trained["n_samples"] == len(rows)
    plan = next(f for f in trained["features"] if f["name"] == "plan")
    counts = {level: sum(r["plan"] == level for r in rows) for level in plan["levels"]}
    assert dict(zip(plan["levels"], plan["counts"], strict=True)) == counts
    assert trained["feature_names"] == ["tenure", "plan"]  # region was never captured
    assert (
        server.client.post("/load", json={"config": {"name": "churn", "version": 2}}).status_code
        == 200
    )
    challenger = server.client.post(
        "/evaluate", json={"config": {"name": "churn", "version": 2, "from_capture": source}}
    )
    assert challenger.status_code == 200, challenger.text
    assert challenger.json()["n_samples"] == len(rows)
    # version 1 needs `region`, which capture_exclude kept out of the files
    champion = server.client.post(
        "/evaluate", json={"config": {"name": "churn", "version": 1, "from_capture": source}}
    )
    assert champion.status_code == 422 and "'region'" in champion.json()["detail"]
    none = server.client.post(
        "/fit",
        json={
            "config": {
                "name": "steady",
                "model_type": MODEL,
                "new_version": True,
                "from_capture": {"name": "steady"},
            }
        },
    )
    assert none.status_code == 409 and "no labelled captured rows" in none.json()["detail"]
    with_rows = server.client.post(
        "/fit",
        json={
            "X": [[1.0]],
            "y": [1],
            "config": {"name": "x", "model_type": MODEL, "from_capture": source},
        },
    )
    assert with_rows.status_code == 422
    empty = server.client.get(
        "/models/churn/monitoring",
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert empty.status_code == 422


def test_sampling_captures_whole_requests_at_its_rate(server: Server) -> None:
    assert server.capture("steady", sample_rate=0.5).json()["sample_rate"] == 0.5
    before = server.version("steady")["captured"]
    for i in range(200):
        assert server.predict("steady", features(people(2, seed=100 + i))).status_code == 200
    # A last request at rate 1: once it is written, so is everything queued before it.
    assert server.capture("steady").status_code == 200
    assert server.predict("steady", people(1, seed=99, start=9999), key="id").status_code == 200
    wait_for(lambda: "c9999" in server.exported("steady").column("_key").to_pylist(), 30)
    captured = server.version("steady")["captured"] - before - 1
    assert captured % 2 == 0 and 60 <= captured // 2 <= 140, captured  # binomial(200, 0.5)


def test_erasure_by_key_export_and_remove_leave_nothing_behind(server: Server) -> None:
    before = server.exported("churn")
    erased = server.client.delete("/models/churn/monitoring/rows", params={"key": "c2000"})
    assert erased.status_code == 200 and erased.json()["rows"] == 1 and erased.json()["labels"] >= 1
    after = server.exported("churn")
    assert after.num_rows == before.num_rows - 1
    assert "c2000" not in after.column("_key").to_pylist()
    csv = server.client.get("/models/churn/monitoring/rows", headers={"Accept": "text/csv"})
    assert (
        csv.headers["content-type"].startswith("text/csv")
        and csv.text.count("\n") == after.num_rows + 1
    )
    assert not list(server.models.rglob("*.parquet")), "nothing captured under MODELS_PATH"
    assert server.client.post("/remove", json={"config": {"name": "churn"}}).status_code == 200
    assert not list(server.monitoring.glob("*/churn"))
    assert server.client.get("/models/churn/monitoring").status_code == 404


def test_a_full_queue_drops_and_counts_and_capture_survives_a_restart(tmp_path: Path) -> None:
    env = {"CAPTURE_QUEUE_ROWS": "2", "CAPTURE_FLUSH_SECONDS": "300"}
    log = tmp_path / "first.log"
    with uvicorn_server(tmp_path / "models", env=env, log=log) as (url, process):
        with Server(url, tmp_path / "models") as server:
            assert server.fit("churn").status_code == 201
            assert (
                server.client.post("/load", json={"config": {"name": "churn"}}).status_code == 200
            )
            assert server.capture("churn").status_code == 200
            # three rows never fit a queue of two: dropped, counted, answered all the same
            assert server.predict("churn", people(3, seed=6)).status_code == 200
            for person in people(10, seed=7):  # the writer may or may not keep up
                assert server.predict("churn", [person]).status_code == 200
            dropped = server.version("churn")["dropped"]
            assert dropped >= 3
            counted = text_string_to_metric_families(server.client.get("/metrics").text)
            samples = [s for f in counted for s in f.samples]
            assert [
                s.value for s in samples if s.name == "model_server_capture_dropped_rows_total"
            ] == [dropped]
        process.send_signal(signal.SIGTERM)  # a clean stop writes what is queued
        process.wait(30)
    restarted = uvicorn_server(tmp_path / "models", log=tmp_path / "second.log")
    with restarted as (url, _), Server(url, tmp_path / "models") as server:
        report = server.report("churn")
        assert report["capture"] is True  # kept in the store
        version = report["versions"][0]
        assert (version["captured"] + version["dropped"], version["dropped"]) == (13, dropped)
