"""deploy/kubernetes, checked offline: every manifest validates against the pinned Kubernetes version's
schemas (kubernetes-validate, strict: unknown fields fail), the KEDA objects (custom resources, not in
those schemas) are checked field by field, and the pieces agree with each other and with the code:
the scaler's stream and group are the round queue's, the grace period covers the worker's SIGTERM drain,
probes and ports are the ones the supervisor serves."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis.asyncio as aioredis
import yaml

from config.settings import ENV_MAP, Settings, load_settings
from roles.worker.loop import round_queue
from storage import keys

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy/kubernetes/base"
OVERLAY = ROOT / "deploy/kubernetes/overlays/production"
KUBERNETES_VERSION = "1.33.0"  # the cluster version the manifests are written for
ROLES = {"bot", "app", "worker"}
EXTRA_SECRETS = {"REDIS_PASSWORD"}  # for the KEDA scaler's TriggerAuthentication
EXTRA_CONFIG = {"REDIS_ADDRESS"}  # for the KEDA scaler (addressFromEnv)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def base_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    return [doc for name in kustomization["resources"] for doc in documents(BASE / name)]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def config() -> dict[str, str]:
    return dict(by_kind(base_objects(), "ConfigMap")["autobroadcast-config"]["data"])


def deployments() -> dict[str, dict[str, Any]]:
    found = {}
    for deployment in by_kind(base_objects(), "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        found[env_of(container)["ROLE"]] = deployment
    return found


def keda_problems(obj: dict[str, Any]) -> list[str]:
    """The KEDA fields this deployment relies on (keda.sh/v1alpha1), with their types."""
    problems: list[str] = []
    spec = obj.get("spec", {})
    if obj["kind"] == "ScaledObject":
        if not isinstance(spec.get("scaleTargetRef", {}).get("name"), str):
            problems.append("scaleTargetRef.name must be a string")
        for field in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
            if not isinstance(spec.get(field), int):
                problems.append(f"{field} must be an integer")
        for trigger in spec.get("triggers", []) or [None]:
            if not isinstance(trigger, dict) or not isinstance(trigger.get("type"), str):
                problems.append("every trigger needs a type")
                continue
            metadata = trigger.get("metadata", {})
            if not all(isinstance(v, str) for v in metadata.values()):
                problems.append("trigger metadata values must be strings")
    elif obj["kind"] == "TriggerAuthentication":
        for ref in spec.get("secretTargetRef", []) or [None]:
            if not isinstance(ref, dict) or set(ref) != {"parameter", "name", "key"}:
                problems.append("secretTargetRef entries need exactly parameter, name and key")
    else:
        problems.append(f"unexpected KEDA kind {obj['kind']}")
    return problems


def problems_of(obj: dict[str, Any]) -> list[str]:
    if obj["apiVersion"].startswith("keda.sh/"):
        return keda_problems(obj)
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{obj['kind']}/{obj['metadata'].get('name')}: {exc.message} at {list(exc.path)}"]
    return []


def test_every_file_is_listed_and_every_manifest_validates() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    objects = base_objects() + documents(OVERLAY / "namespace.yaml")
    assert {o["kind"] for o in objects} >= {"Job", "Deployment", "PodDisruptionBudget", "Service", "ConfigMap",
                                             "ScaledObject", "TriggerAuthentication", "Namespace"}
    problems = [p for obj in objects for p in problems_of(obj)]
    assert problems == []


def test_the_validator_catches_a_broken_manifest() -> None:
    worker = copy.deepcopy(deployments()["worker"])
    worker["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "nine-one-hundred"
    worker["spec"]["template"]["spec"]["terminationGracePeriod"] = 45  # a misspelt field: strict refuses it
    assert len(problems_of(worker)) == 1
    scaled = copy.deepcopy(by_kind(base_objects(), "ScaledObject")["autobroadcast-worker"])
    scaled["spec"]["minReplicaCount"] = "1"
    assert keda_problems(scaled) == ["minReplicaCount must be an integer"]


def test_every_role_runs_with_probes_on_the_ports_the_supervisor_serves() -> None:
    found = deployments()
    assert set(found) == ROLES
    settings = load_settings({k: v for k, v in config().items() if k in ENV_MAP}, env_file=None)
    for role, deployment in found.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == settings.metrics_port
        probe_port = "http" if role == "app" else "metrics"
        if role == "app":
            assert ports["http"] == settings.app.port
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": probe_port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": probe_port}
        assert container["image"] == "autobroadcast" and "command" not in container  # the image's app.py
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pod["securityContext"]["runAsNonRoot"] is True
    job = by_kind(base_objects(), "Job")["autobroadcast-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_worker_grace_covers_the_sigterm_drain_and_the_budget_takes_one_at_a_time() -> None:
    worker = deployments()["worker"]
    lease_ttl = load_settings({"LEASE_TTL": config()["LEASE_TTL"]}, env_file=None).engine.lease_ttl
    # on SIGTERM a worker waits up to LEASE_TTL for its sends in flight, then closes its clients
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= lease_ttl + 10
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (pdb,) = by_kind(base_objects(), "PodDisruptionBudget").values()
    assert pdb["spec"]["selector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_services_select_pods_that_exist() -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in deployments().values()]
    for service in by_kind(base_objects(), "Service").values():
        selector = service["spec"]["selector"]
        matched = [labels for labels in pods if selector.items() <= labels.items()]
        assert matched, service["metadata"]["name"]
    metrics = by_kind(base_objects(), "Service")["autobroadcast-metrics"]
    assert len([p for p in pods if metrics["spec"]["selector"].items() <= p.items()]) == len(ROLES)
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 9100, "targetPort": "metrics"}]


def test_the_scaler_watches_the_round_queue_the_workers_read() -> None:
    queue = round_queue(aioredis.Redis(), "probe", Settings())  # names only: nothing connects
    scaled = by_kind(base_objects(), "ScaledObject")["autobroadcast-worker"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == deployments()["worker"]["metadata"]["name"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis-streams"
    metadata = trigger["metadata"]
    assert metadata["stream"] == queue.stream == keys.QUEUE_STREAM.format(name="rounds")
    assert metadata["consumerGroup"] == queue.group == keys.QUEUE_GROUP
    assert int(metadata["streamLength"]) > 0
    assert metadata["addressFromEnv"] in config()
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"] <= 50  # the scheduler lives in a worker
    auth = by_kind(base_objects(), "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert {ref["key"] for ref in auth["spec"]["secretTargetRef"]} <= secret_keys()


def secret_keys() -> set[str]:
    lines = (OVERLAY / "secrets.env.example").read_text(encoding="utf-8").splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def test_the_overlay_supplies_the_image_and_every_secret_production_requires() -> None:
    overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "../../base" in overlay["resources"]
    assert {i["name"] for i in overlay["images"]} == {"autobroadcast"}
    (generator,) = overlay["secretGenerator"]
    referenced = {ref["secretRef"]["name"] for d in deployments().values()
                  for ref in d["spec"]["template"]["spec"]["containers"][0]["envFrom"] if "secretRef" in ref}
    assert referenced == {generator["name"]}
    required = {"SESSION_ENCRYPTION_KEY", "BOT_TOKEN", "TELEGRAM_API_ID", "TELEGRAM_API_HASH", "DATABASE_URL",
                "REDIS_URL", "ADMIN_API_TOKENS"}
    assert required <= secret_keys() <= set(ENV_MAP) | EXTRA_SECRETS
    assert set(config()) <= set(ENV_MAP) | EXTRA_CONFIG
    assert not set(config()) & secret_keys()  # a secret never sits in the ConfigMap
    assert "deploy/kubernetes/overlays/*/secrets.env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", ["secrets.env.example"])
def test_the_secret_example_holds_no_values(name: str) -> None:
    for line in (OVERLAY / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), line
