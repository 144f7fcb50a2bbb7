"""The deployments of docs/replicas.md, checked without a cluster or an engine: the
Kubernetes manifests against the Kubernetes schemas (kubernetes-validate, strict: an
unknown or misplaced field fails), and the compose profile and HAProxy's configuration
against each other. (The containers themselves: the container check, docs/replicas.md.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from server import __version__
from tests.servers import PROJECT_ROOT

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


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(deployment)["env"]}


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
        assert [v["persistentVolumeClaim"]["claimName"] for v in volumes] == ["model-server-store"]
        mount = container(deployment)["volumeMounts"][0]
        assert mount["mountPath"] == env_of(deployment)["MODELS_PATH"]
        assert mount.get("readOnly", False) is read_only
        secret = container(deployment)["envFrom"][0]["secretRef"]["name"]
        assert ("Secret", secret) in found
        assert container(deployment)["image"] == f"model-server:{__version__}"
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
        assert all(volume.endswith(":ro") for volume in service["volumes"])
        assert [v.rsplit(":", 1)[0] for v in service["volumes"]] == primary["volumes"]
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
