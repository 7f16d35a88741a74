"""Deploy/k8s, validated without a Kubernetes cluster (none runs here): every overlay renders
with `kubectl kustomize`; every object validates against the Kubernetes API schemas of the
current and the previous minor version (`kubernetes-validate`, strict: an unknown field is an
error); the shapes a consensus group and a gateway fleet need are there; and each rendered
config file passes `junction config check` with the environment and the Secret files its pod
would have, made by Deploy/k8s/make-secrets.sh."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
K8S = ROOT / "Deploy" / "k8s"
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))
OVERLAYS = ["base", "overlays/sglang", "overlays/pd-split", "overlays/tls", "overlays/monitoring"]
# The API versions checked: the newest kubernetes-validate knows and the minor before it.
VERSIONS = ["1.37.0", "1.36.0"]
# Prometheus Operator's kinds are custom resources: no API schema to check them against.
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor"}
ENGINE_PODS = ["vllm-0", "vllm-1", "vllm-decode-0"]
# Installed into the tests' venv beside this interpreter (Tests/Interop/requirements.txt).
VALIDATE = str(pathlib.Path(sys.executable).parent / "kubernetes-validate")


def render(overlay):
    if not shutil.which("kubectl"):
        pytest.fail("kubectl is not installed (Deploy/dev/install-deps.sh installs it where apt has it): it renders Deploy/k8s")
    out = subprocess.run(["kubectl", "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def validate(objects, tmp_path, version):
    path = tmp_path / f"objects-{version}.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return subprocess.run([VALIDATE, "--strict", "--quiet", "-k", version, str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    out = tmp_path_factory.mktemp("secrets")
    run = subprocess.run([str(K8S / "make-secrets.sh"), str(out), "--tls", "--engines", ",".join(ENGINE_PODS)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "JUNCTION_BIN": BINARY})
    assert run.returncode == 0, run.stderr
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_current_and_previous_api(overlay, tmp_path):
    objects = [o for o in render(overlay) if o["kind"] not in CUSTOM_KINDS]
    assert objects
    for version in VERSIONS:
        result = validate(objects, tmp_path, version)
        assert result.returncode == 0, f"{overlay} against {version}:\n{result.stdout}{result.stderr}"


def test_the_validator_refuses_what_the_api_would(tmp_path):
    # The check above can fail: a misspelt field and a wrong type are both refused.
    statefulset = next(o for o in render("base") if o["kind"] == "StatefulSet")
    for broken in ({**statefulset, "spec": {**statefulset["spec"], "replica": 3}},
                   {**statefulset, "spec": {**statefulset["spec"], "replicas": "three"}}):
        assert validate([broken], tmp_path, VERSIONS[0]).returncode != 0


def test_the_secrets_manifest_validates(secrets, tmp_path):
    objects = list(yaml.safe_load_all((secrets / "secrets.yaml").read_text()))
    assert {o["metadata"]["name"] for o in objects} == {"junction-root", "junction-gateway", "junction-agents", "junction-tls"}
    assert validate(objects, tmp_path, VERSIONS[0]).returncode == 0


def by_kind(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_the_trio_runs_as_a_consensus_group_needs():
    objects = render("base")
    service = by_kind(objects, "Service", "junction-scheduler")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    trio = by_kind(objects, "StatefulSet", "junction-scheduler")
    spec = trio["spec"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel" and spec["serviceName"] == "junction-scheduler"
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    # No --id: each pod's id comes from its ordinal.
    assert "--id" not in container["args"]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= container.keys()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pdb = by_kind(objects, "PodDisruptionBudget", "junction-scheduler")
    assert pdb["spec"]["maxUnavailable"] == 1
    # Peers are named as the headless Service names the pods, one per ordinal, id = ordinal + 1.
    config = json.loads(by_kind(objects, "ConfigMap", next(o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"
                                                           and o["metadata"]["name"].startswith("junction-scheduler-config")))["data"]["junction.json"])
    assert [(m["id"], m["address"]) for m in config["cluster"]["schedulers"]] == [
        (n + 1, f"junction-scheduler-{n}.junction-scheduler:7100") for n in range(3)]


def test_every_junction_container_is_unprivileged_and_bounded():
    for overlay in OVERLAYS:
        for o in render(overlay):
            if o["kind"] not in ("StatefulSet", "Deployment"):
                continue
            pod = o["spec"]["template"]["spec"]
            for c in pod["containers"]:
                assert "requests" in c.get("resources", {}) and "memory" in c["resources"].get("limits", {}), (overlay, c["name"])
                if c["image"].split(":")[0] != "junction":
                    continue
                security = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
                assert security.get("runAsNonRoot") is True and security.get("readOnlyRootFilesystem") is True, (overlay, c["name"])
                assert security.get("allowPrivilegeEscalation") is False and security["capabilities"]["drop"] == ["ALL"], (overlay, c["name"])


def test_the_gateways_scale_and_keep_one_up():
    objects = render("base")
    assert by_kind(objects, "Deployment", "junction-gateway")["spec"]["replicas"] >= 2
    hpa = by_kind(objects, "HorizontalPodAutoscaler", "junction-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "junction-gateway" and hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert by_kind(objects, "PodDisruptionBudget", "junction-gateway")["spec"]["minAvailable"] == 1


def pod_environment(container, secrets, pod_name):
    """The environment Kubernetes gives `container`: fieldRefs and the Secrets' keys."""
    env = {"PATH": os.environ.get("PATH", "")}
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = (secrets / "files" / ref["name"] / ref["key"]).read_text()
        elif "fieldRef" in source:
            env[item["name"]] = {"metadata.name": pod_name, "status.podIP": "10.0.0.7"}[source["fieldRef"]["fieldPath"]]
        else:
            env[item["name"]] = item["value"]
    return env


def workloads(objects):
    """(pod name, container, its config text with every mounted Secret's path pointing at the
    files make-secrets.sh wrote) for each container running junction."""
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for o in objects:
        if o["kind"] not in ("StatefulSet", "Deployment"):
            continue
        pod = o["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        volumes.update({t["metadata"]["name"]: {"persistentVolumeClaim": {}} for t in o["spec"].get("volumeClaimTemplates", [])})
        pod_name = f"{o['metadata']['name']}-0" if o["kind"] == "StatefulSet" else f"{o['metadata']['name']}-5d8f7-x2x9q"
        for c in pod["containers"]:
            if c["image"].split(":")[0] != "junction":
                continue
            mounts = {m["mountPath"]: volumes[m["name"]] for m in c.get("volumeMounts", [])}
            config = next(v["configMap"]["name"] for path, v in mounts.items() if path == "/etc/junction")
            yield pod_name, c, mounts, config_maps[config]["data"]["junction.json"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_pods_config_passes_config_check_with_what_the_pod_is_given(overlay, secrets, tmp_path):
    checked = 0
    for pod_name, container, mounts, text in workloads(render(overlay)):
        for path, volume in mounts.items():
            if "secret" in volume:
                text = text.replace(path + "/", str(secrets / "files" / volume["secret"]["secretName"]) + "/")
        config = tmp_path / f"{pod_name}-{container['name']}.json"
        config.write_text(text)
        env = pod_environment(container, secrets, pod_name)
        # Checked as the process the container runs (its first argument) reads it.
        result = subprocess.run([BINARY, "config", "check", "--as", container["args"][0], "--config", str(config)], capture_output=True, text=True, timeout=30, env=env)
        assert result.returncode == 0 and "ok" in result.stdout, f"{overlay} {pod_name}/{container['name']}:\n{result.stdout}{result.stderr}\n{text}"
        checked += 1
    assert checked >= 3
