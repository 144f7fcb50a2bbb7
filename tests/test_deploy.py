"""The deployments of docs/replicas.md, checked without a cluster or an engine: the
Kubernetes manifests against the Kubernetes schemas (kubernetes-validate, strict: an
unknown or misplaced field fails), and the compose profile and HAProxy's configuration
against each other. (The containers themselves: the container check, docs/replicas.md.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from server import __version__
from tests.helpers import fit_body, named, wait_for
from tests.servers import PROJECT_ROOT, uvicorn_server

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
HAPROXY = PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes still supported by its cloud vendors


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc for path in MANIFESTS for doc in documents(path)
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("version", [KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misplaced_field_is_caught() -> None:
    deployment = resources()[("Deployment", "model-server-replicas")]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in MANIFESTS]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: dict[str, Any], namespace: str = "default") -> dict[str, str]:
    """The container's environment as Kubernetes gives it, in `namespace`: the downward
    API's namespace, and `$(VAR)` of a variable defined above expanded."""
    env: dict[str, str] = {}
    for item in container(deployment)["env"]:
        if "valueFrom" in item:
            assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
            env[item["name"]] = namespace
            continue
        value = item["value"]
        for name, known in env.items():
            value = value.replace(f"$({name})", known)
        env[item["name"]] = value
    return env


def test_one_primary_n_ready_replicas_on_one_shared_store() -> None:
    found = resources()
    primary = found[("Deployment", "model-server-primary")]
    replicas = found[("Deployment", "model-server-replicas")]
    assert primary["spec"]["replicas"] == 1 and primary["spec"]["strategy"]["type"] == "Recreate"
    assert replicas["spec"]["replicas"] >= 2
    assert container(replicas)["readinessProbe"]["httpGet"]["path"] == "/health"
    assert env_of(replicas)["SERVING_ROLE"] == "replica"
    assert env_of(primary)["SERVING_ROLE"] == "primary"
    # PRIMARY_URL names the primary's Service, on its port.
    service = found[("Service", "model-server-primary")]
    assert (
        env_of(replicas)["PRIMARY_URL"]
        == f"http://model-server-primary:{service['spec']['ports'][0]['port']}"
    )
    claim = found[("PersistentVolumeClaim", "model-server-store")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for deployment, read_only in ((primary, False), (replicas, True)):
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes]
        assert claims == ["model-server-store", "model-server-monitoring"]
        mount, monitoring = container(deployment)["volumeMounts"]
        assert mount["mountPath"] == env_of(deployment)["MODELS_PATH"]
        assert mount.get("readOnly", False) is read_only
        # both write what they capture, each its own folder, never inside MODELS_PATH
        assert (
            monitoring["mountPath"] == env_of(deployment)["MONITORING_PATH"] != mount["mountPath"]
        )
        assert not monitoring.get("readOnly", False)
        secret = container(deployment)["envFrom"][0]["secretRef"]["name"]
        assert ("Secret", secret) in found
        assert container(deployment)["image"] == "model-server"
    images = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["images"]
    assert images == [{"name": "model-server", "newTag": __version__}]
    # Each Service selects the pods of one Deployment.
    for name, deployment in (("model-server-primary", primary), ("model-server", replicas)):
        selector = found[("Service", name)]["spec"]["selector"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_compose_profile_puts_haproxy_in_front_of_two_read_only_replicas() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    replicas = {n: s for n, s in compose.items() if "replicas" in s.get("profiles", [])}
    assert sorted(replicas) == ["balancer", "replica-1", "replica-2"]
    primary = compose["model-server"]
    for name in ("replica-1", "replica-2"):
        service = replicas[name]
        assert service["environment"]["SERVING_ROLE"] == "replica"
        assert service["image"] == primary["image"]
        # the store and the key read-only; the capture volume shared, written by all
        store, key, monitoring = service["volumes"]
        assert store.endswith(":ro") and key.endswith(":ro")
        assert [store.rsplit(":", 1)[0], key.rsplit(":", 1)[0], monitoring] == primary["volumes"]
        assert monitoring.split(":")[1] == service["environment"]["MONITORING_PATH"]
    servers = [
        line.split()[1:3]
        for line in HAPROXY.read_text().splitlines()
        if line.strip().startswith("server ")
    ]
    assert servers == [["replica-1", "replica-1:8000"], ["replica-2", "replica-2:8000"]]
    assert "option httpchk GET /health" in HAPROXY.read_text()


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="Debian's haproxy is not installed")
def test_haproxy_accepts_its_configuration() -> None:
    checked = subprocess.run(["haproxy", "-c", "-f", str(HAPROXY)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_predictions_through_the_services_host_names_are_answered(tmp_path: Path) -> None:
    """Servers started with the manifests' environment (no token, as the manifests ship)
    answer writing calls addressed to their Service's names, short and full; another
    name is refused (DNS rebinding)."""
    found = resources()
    models = tmp_path / "models"
    models.mkdir()
    overridden = ("MODELS_PATH", "TRAINING_CORES")  # this machine's folder and cores

    def environment(deployment: str) -> dict[str, str]:
        env = env_of(found[("Deployment", deployment)], namespace="team-a")
        return {name: value for name, value in env.items() if name not in overridden}

    primary_env = environment("model-server-primary")
    with uvicorn_server(models, env=primary_env) as (primary, _):
        replica_env = {**environment("model-server-replicas"), "PRIMARY_URL": primary}
        with uvicorn_server(models, env=replica_env) as (replica, _):
            full = ".team-a.svc.cluster.local"
            fitted = httpx.post(
                primary + "/fit", json=fit_body("k8s"), timeout=60,
                headers={"Host": "model-server-primary" + full},
            )  # fmt: skip
            assert fitted.status_code == 201, fitted.text
            loaded = httpx.post(
                primary + "/load", json=named("k8s"), headers={"Host": "model-server-primary"}
            )
            assert loaded.status_code == 200, loaded.text
            row = {"X": fit_body("k8s")["X"][:1], **named("k8s")}

            def predict(host: str) -> httpx.Response:
                return httpx.post(replica + "/predict", json=row, headers={"Host": host})

            wait_for(lambda: predict("localhost").status_code != 409, 10, "the replica to follow")
            for host in ("model-server", "model-server.team-a", "model-server" + full):
                answer = predict(host)
                assert answer.status_code == 200, (host, answer.text)
            refused = httpx.post(replica + "/predict", json=row, headers={"Host": "evil.example"})
            assert refused.status_code == 403 and "ALLOWED_HOSTS" in refused.text
