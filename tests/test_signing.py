"""Signed model files, on real servers: nothing the server did not write is ever unpickled,
whatever lands in MODELS_PATH; an operator can trust files on purpose and rotate the key;
the key shows nowhere."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx
import joblib
from sklearn.linear_model import LogisticRegression

from server.replication import manifest
from server.store.files import ModelStore
from server.store.keys import read_key_file
from server.store.pointers import first
from server.store.signing import SigningKey
from tests.helpers import KEY, answered, dataset, fit_body, named, run_trust
from tests.servers import uvicorn_server

UNTRUSTED = ["planted", "flipped", "forest", "foreign"]


class Plant:
    """Unpickling this creates the marker file: proof that a pickle was run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def plant(models: Path, marker: Path) -> None:
    """Files dropped into MODELS_PATH by someone else: a new name with no signature, and one
    signed with another server's key, both pickles that would run code."""
    bundle = {"estimator": Plant(marker), "classes": [0, 1], "model_type": "X", "n_features": 4}
    (models / "planted").mkdir()
    joblib.dump(bundle, models / "planted" / "1.joblib")
    (models / "planted" / "1.json").write_text('{"name": "planted", "model_type": "X"}')
    ModelStore(models, KEY).write_pointers("planted", first(1))
    ModelStore(models, SigningKey.generate()).save("foreign", 1, bundle, {"name": "foreign"})


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_planted_changed_and_foreign_files_are_refused_and_never_unpickled(
    tmp_path: Path,
) -> None:
    models, marker, log = tmp_path / "models", tmp_path / "marker", tmp_path / "server.log"
    secret = secrets.token_hex(24)
    env = {"MODEL_SIGNING_KEY": secret, "ACCESS_LOG": "json"}
    answers: list[str] = []
    with (
        uvicorn_server(models, env=env, log=log) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            response = client.request(method, path, **kwargs)
            answers.append(response.text)
            return response

        for body in (
            fit_body("good"),
            fit_body("flipped"),
            fit_body("forest", "RandomForestClassifier", {"n_estimators": 5}),
        ):
            assert call("POST", "/fit", json=body).status_code == 201
        assert call("POST", "/load", json=named("good")).status_code == 200
        rows = {"X": dataset()[0][:5], "config": {"name": "good", "probabilities": True}}
        served = answered(call("POST", "/predict", json=rows))

        flip_a_byte(models / "flipped" / "1.joblib")
        flip_a_byte(models / "forest" / "1.onnx")
        plant(models, marker)

        listed = {m["name"]: m for m in call("GET", "/models").json()["models"]}
        why = {
            "planted": "carries no signature",
            "flipped": "1.joblib was changed after the server wrote it",
            "forest": "1.onnx was changed after the server wrote it",
            "foreign": "it was signed with another key",
        }
        for name in UNTRUSTED:
            for info in (
                listed[name],
                call("GET", f"/models/{name}").json(),
                call("GET", f"/models/{name}/versions").json()["versions"][0],
            ):
                assert info["status"] == "untrusted", info
                assert why[name] in info["error"]
            refused = call("POST", "/load", json=named(name))
            assert refused.status_code == 409, refused.text
            detail = refused.json()["detail"]
            assert f"model '{name}' version 1 is untrusted: " in detail
            assert why[name] in detail and f"python -m server.trust sign {name}/1" in detail
            # The trusted model serves throughout.
            assert answered(call("POST", "/predict", json=rows)) == served
        assert listed["good"]["status"] == "loaded"
        assert call("GET", "/status").json()["inference"]["loaded"] == ["good"]
        exposition = call("GET", "/metrics").text
        assert metric(exposition, "model_server_untrusted_model_versions") == 4
        assert metric(exposition, "model_server_untrusted_loads_refused_total") == 4
        assert not marker.exists()

    # At start-up: each one named in the log, none read, and the rest loads as before.
    with (
        uvicorn_server(models, env=env, log=log) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        assert client.post("/load", json=named("good")).status_code == 200
        assert answered(client.post("/predict", json=rows)) == served
        answers.append(client.get("/metrics").text)
    started = log.read_text()
    for name in UNTRUSTED:
        assert f"WARNING:  model '{name}' version 1 is untrusted" in started
    assert not marker.exists()

    # The key is in no log line, no answer and no metric; its fingerprint may be.
    key_id = SigningKey(secret.encode()).key_id
    assert key_id in started
    for text in (started, *answers):
        assert secret not in text and secret.encode().hex() not in text


def write_v2_model(models: Path, name: str) -> None:
    """A model as v2 saved it: NAME.joblib and NAME.json side by side, unsigned."""
    X, y = dataset()
    estimator = LogisticRegression().fit(X, [sorted(set(y)).index(label) for label in y])
    classes = sorted(set(y))
    models.mkdir(parents=True)
    bundle = {"estimator": estimator, "classes": classes, "model_type": "LogisticRegression"}
    joblib.dump({**bundle, "n_features": 4}, models / f"{name}.joblib")
    metadata = {"name": name, "model_type": "LogisticRegression", "classes": classes}
    (models / f"{name}.json").write_text(json.dumps({**metadata, "n_features": 4}))


def predictions(client: httpx.Client, names: list[str]) -> dict[str, Any]:
    found = {}
    for name in names:
        assert client.post("/load", json=named(name)).status_code == 200
        body = {"X": dataset()[0][:8], "config": {"name": name, "probabilities": True}}
        found[name] = answered(client.post("/predict", json=body))
        assert client.post("/unload", json=named(name)).status_code == 200
    return found


def test_the_trust_command_signs_v2_files_and_rotation_keeps_every_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    key_file = tmp_path / "models.key"
    write_v2_model(models, "old")
    with uvicorn_server(models) as (url, _), httpx.Client(base_url=url, timeout=120) as client:
        assert client.get("/models/old").json()["status"] == "untrusted"
        assert client.post("/load", json=named("old")).status_code == 409
        assert "old/1: signed" in run_trust(models, "sign", "old")
        body = fit_body("fresh", "RandomForestClassifier", {"n_estimators": 5})
        assert client.post("/fit", json=body).status_code == 201
        before = predictions(client, ["old", "fresh"])
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    old_key = key_file.read_text()
    out = run_trust(models, "rotate")
    assert "old/1: re-signed" in out and "fresh/1: re-signed" in out
    assert "run it again" in out or "run `trust rotate` again" in out  # if interrupted
    assert key_file.read_text() != old_key
    # The serving set the replicas follow is signed with the new key too (issue 37, item 10).
    assert f"{manifest.FILE_NAME}: re-signed" in out
    assert manifest.read(models, read_key_file(key_file)) is not None
    assert "old/1: trusted" in run_trust(models, "list")
    with uvicorn_server(models) as (url, _), httpx.Client(base_url=url, timeout=120) as client:
        assert predictions(client, ["old", "fresh"]) == before

    # With the key in MODEL_SIGNING_KEY: the new secret there, the old key from its file.
    secret = {"MODEL_SIGNING_KEY": secrets.token_hex(24)}
    assert "fresh/1: re-signed" in run_trust(
        models, "rotate", "--old-key-file", str(key_file), env=secret
    )
    with (
        uvicorn_server(models, env=secret) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        assert predictions(client, ["old", "fresh"]) == before

    # A mistyped key path is an error, never a new key (issue 37, item 10).
    mistyped = tmp_path / "modles.key"
    out = run_trust(models, "list", env={"MODEL_SIGNING_KEY_FILE": str(mistyped)}, status=1)
    assert "does not exist" in out and not mistyped.exists()


def test_the_trust_command_signs_regular_files_only_never_through_a_link(tmp_path: Path) -> None:
    """A FIFO, a link to /dev/zero and a link out of the store, each as a version's model
    file: `sign --all` returns at once, signs none of them, and says why (issue 37, item 9)."""
    models = tmp_path / "models"
    with uvicorn_server(models) as (url, _):
        body = fit_body("m", "LogisticRegression", {})
        assert httpx.post(url + "/fit", json=body, timeout=120).status_code == 201
    outside = tmp_path / "outside.joblib"
    outside.write_bytes((models / "m" / "1.joblib").read_bytes())
    for name, make in (
        ("fifo", os.mkfifo),
        ("zero", lambda path: path.symlink_to("/dev/zero")),
        ("outside", lambda path: path.symlink_to(outside)),
    ):
        shutil.copytree(models / "m", models / name)  # signed for "m": untrusted as `name`
        (models / name / "1.joblib").unlink()
        make(models / name / "1.joblib")
    out = run_trust(models, "sign", "--all")
    for name in ("fifo", "zero", "outside"):
        assert f"{name}/1: can't be signed" in out, out
        assert f"{name}/1: trusted" not in run_trust(models, "list")
    assert "m/1: trusted already" in out


def test_a_compiled_model_loads_without_reading_its_estimator_until_needed(
    tmp_path: Path,
) -> None:
    with (
        uvicorn_server(tmp_path / "models") as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        body = fit_body("lazy", "RandomForestClassifier", {"n_estimators": 5})
        assert client.post("/fit", json=body).status_code == 201
        assert client.post("/load", json=named("lazy")).status_code == 200
        info = client.get("/models/lazy").json()
        assert info["runtime"] == "onnx"
        assert info["estimator"].startswith("not read yet")
        one = {"X": dataset()[0][:1], "config": {"name": "lazy"}}
        assert client.post("/predict", json=one).status_code == 200
        # /evaluate scores with the estimator: it is read (its tag checked) now.
        X, y = dataset()
        scored = client.post("/evaluate", json={"X": X, "y": y, "config": {"name": "lazy"}})
        assert scored.status_code == 200, scored.text
        assert client.get("/models/lazy").json()["estimator"] == "read"
