"""A full disk (issue 44, "A full disk"): MODELS_PATH and MONITORING_PATH on small
filesystems of their own, filled at the chosen moment. What fails says so in JSON (507 when
the disk is full) and leaves the service as it was; what could not be written is written
once space is freed; drop counts survive a restart; a key file is never left empty."""

from __future__ import annotations

import errno
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from devtools.local_server import uvicorn_server
from server.replication import manifest
from server.service.fitting import promoted
from server.store.keys import UnusableKey, read_key_file, signing_key
from tests.disks import fill, free, small_disk
from tests.helpers import server_store, wait_for

MODEL = {"model_type": "LogisticRegression"}


def fit_body(name: str) -> dict[str, Any]:
    X = [[float(i % 7), float(i % 3)] for i in range(40)]
    return {"X": X, "y": [i % 2 for i in range(40)], "config": {"name": name, **MODEL}}


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("full-disk")
    with small_disk(root / "store", 48) as store, small_disk(root / "capture", 8) as capture:
        yield store, capture


@pytest.fixture(scope="module")
def server(disks: tuple[Path, Path]) -> Iterator[tuple[httpx.Client, Any]]:
    store, capture = disks
    env = {"MONITORING_PATH": str(capture), "CAPTURE_FLUSH_SECONDS": "0.2",
           "MAX_INFERENCE_MODELS": "4"}  # fmt: skip
    log = store.parent / "server.log"
    with (
        uvicorn_server(store / "models", env=env, log=log) as (url, process),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        for name in ("keep", "second"):
            assert client.post("/fit", json=fit_body(name)).status_code == 201
        assert client.post("/load", json={"config": {"name": "keep"}}).status_code == 200
        yield client, process


def predict(client: httpx.Client, name: str, rows: int = 1) -> httpx.Response:
    X = [[float(i % 5), 1.0] for i in range(rows)]
    return client.post("/predict", json={"X": X, "config": {"name": name}})


def test_a_failed_removal_or_change_is_a_507_and_the_model_keeps_serving(
    server: tuple[httpx.Client, Any], disks: tuple[Path, Path]
) -> None:
    """Items 20 and 24: /remove on a full disk unloaded the model first; promote, aliases,
    capture and the rest answered a plain-text 500."""
    client, _ = server
    store, _ = disks
    fill(store)
    try:
        for call in (
            lambda: client.post("/remove", json={"config": {"name": "keep"}}),
            lambda: client.post("/remove_all"),
            lambda: client.put("/models/keep/aliases/stable", json={"version": 1}),
            lambda: client.put("/models/keep/monitoring", json={"capture": True}),
        ):
            answer = call()
            assert answer.status_code == 507, answer.text
            assert "no space left" in answer.json()["detail"]
            assert predict(client, "keep").status_code == 200
        assert client.get("/models/keep").status_code == 200
        # Item 25: a load the serving set can't record is recorded once space is freed.
        assert client.post("/load", json={"config": {"name": "second"}}).status_code == 200
    finally:
        free(store)
    key = server_store(store / "models").key

    def recorded() -> bool:
        served = manifest.read(store / "models", key)
        return served is not None and "second" in served.models

    wait_for(recorded, 20, "the serving set to name 'second'")
    assert client.put("/models/keep/aliases/stable", json={"version": 1}).status_code == 200


def test_drop_counts_of_a_full_monitoring_disk_survive_a_restart(
    server: tuple[httpx.Client, Any], disks: tuple[Path, Path]
) -> None:
    """Item 23: the counts of rows dropped on a full MONITORING_PATH were kept in memory
    only, and lost at a restart. Stops the module's server: the last test here."""
    client, process = server
    store, capture = disks
    assert client.put("/models/keep/monitoring", json={"capture": True}).status_code == 200

    def captured() -> int:
        versions = client.get("/models/keep/monitoring").json()["versions"]
        return versions[0]["captured"] if versions else 0

    assert predict(client, "keep").status_code == 200
    wait_for(lambda: captured() == 1, 20, "the first row written")
    fill(capture)
    assert predict(client, "keep", rows=20).status_code == 200
    wait_for(lambda: client.get("/models/keep/monitoring").json()["versions"][0]["dropped"] == 20,
             20, "20 rows dropped")  # fmt: skip
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    free(capture)
    env = {"MONITORING_PATH": str(capture)}
    with uvicorn_server(store / "models", env=env, log=store.parent / "again.log") as (url, _):
        report = httpx.get(f"{url}/models/keep/monitoring", timeout=30).json()
    assert (report["versions"][0]["captured"], report["versions"][0]["dropped"]) == (1, 20)


def test_a_key_file_is_never_left_empty(tmp_path: Path) -> None:
    """Item 22: a key that could not be written left a 0-byte file that blocked every later
    start; one left by an older release is made anew."""
    with small_disk(tmp_path / "keys", 1) as keys:
        key_file, models = keys / "model-signing.key", tmp_path / "models"
        fill(keys)
        with pytest.raises(UnusableKey, match="can't be created"):
            signing_key(None, key_file, models)
        assert sorted(path.name for path in keys.iterdir()) == ["filler"]
        free(keys)
        key, said = signing_key(None, key_file, models)
        assert "created" in said and read_key_file(key_file) == key
        key_file.unlink()
        key_file.write_bytes(b"")
        again, _ = signing_key(None, key_file, models)
        assert read_key_file(key_file) == again


def test_a_fit_s_failed_promotion_says_so() -> None:
    """Item 21: an OSError promoting a saved version escaped as a 201 with neither
    `promoted` nor `promote_error`."""

    class FullDisk:
        async def promote(self, name: str, version: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", "/models/m/.pointers.json.tmp")

    answer = anyio.run(promoted, FullDisk(), "m", 2, {"name": "m", "version": 2})  # type: ignore[arg-type]
    assert answer["promoted"] is False
    assert "no space left" in answer["promote_error"] and "/models" not in answer["promote_error"]
