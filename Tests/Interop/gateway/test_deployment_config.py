"""The trio configured as a deployment configures it (Docs/configuration.md, "Deployments"):
one file for every node with the secret and each node's listen address from the environment,
peers named by DNS names (here `localhost`), and each node's id from its host's name, as a
StatefulSet's pods get them. As root each node runs in a UTS namespace of its own named
`junction-scheduler-N`; elsewhere the ids are passed with --id and that part is skipped."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY, free_port

SECRET = "from-the-environment-0123"


def node_command(ordinal, config):
    if os.geteuid() == 0 and shutil.which("unshare"):
        name = f"junction-scheduler-{ordinal}"
        return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, BINARY, "scheduler", "--config", config]
    return [BINARY, "scheduler", "--config", config, "--id", str(ordinal + 1)]


@pytest.fixture
def deployed_trio():
    directory = tempfile.mkdtemp(prefix="junction-deploy-")
    ports = [free_port() for _ in range(3)]
    config = os.path.join(directory, "cluster.json")
    with open(config, "w") as f:
        json.dump({
            "cluster": {"secret": "${JUNCTION_SECRET}",
                        "schedulers": [{"id": i + 1, "address": f"localhost:{port}"} for i, port in enumerate(ports)]},
            "scheduler": {"data_dir": os.path.join(directory, "data-{id}"), "listen": "${JUNCTION_LISTEN:-0.0.0.0:7100}", "tick_ms": 50},
        }, f)
    processes = []
    for ordinal, port in enumerate(ports):
        env = {**os.environ, "JUNCTION_SECRET": SECRET, "JUNCTION_LISTEN": f"127.0.0.1:{port}"}
        log = open(os.path.join(directory, f"scheduler-{ordinal + 1}.log"), "wb")
        processes.append((subprocess.Popen(node_command(ordinal, config), stdout=log, stderr=subprocess.STDOUT, env=env), log))
    yield config, directory
    for proc, log in processes:
        proc.kill()
        proc.wait()
        log.close()
    shutil.rmtree(directory, ignore_errors=True)


def ctl_status(config, env):
    out = subprocess.run([BINARY, "ctl", "status", "--json", "--config", config], capture_output=True, text=True, timeout=20, env=env)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return out.stderr


def logs(directory):
    return "\n".join(open(os.path.join(directory, f"scheduler-{i}.log"), errors="replace").read()[-2000:] for i in (1, 2, 3))


def test_a_trio_configured_from_the_environment_and_host_names_elects_a_leader(deployed_trio):
    config, directory = deployed_trio
    env = {**os.environ, "JUNCTION_SECRET": SECRET}
    deadline = time.time() + 30
    status = None
    while time.time() < deadline:
        status = ctl_status(config, env)
        if isinstance(status, dict) and status["leader_id"] in (1, 2, 3) and all(m["reachable"] for m in status["members"]) and len(status["members"]) == 3:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no leader with every member reachable: {status}\n{logs(directory)}")
    # The members are known by the names the file gives them, dialled by name.
    assert sorted(m["address"].split(":")[0] for m in status["members"]) == ["localhost"] * 3
    if os.geteuid() == 0 and shutil.which("unshare"):
        for node in (1, 2, 3):
            text = open(os.path.join(directory, f"scheduler-{node}.log"), errors="replace").read()
            assert f"scheduler id {node}, from the host's name" in text, text[-2000:]


def test_a_variable_the_file_names_and_the_environment_lacks_stops_start_up_naming_it(deployed_trio):
    config, _ = deployed_trio
    env = {k: v for k, v in os.environ.items() if k not in ("JUNCTION_SECRET", "JUNCTION_LISTEN")}
    out = subprocess.run([BINARY, "config", "check", "--config", config], capture_output=True, text=True, timeout=20, env=env)
    assert out.returncode != 0
    assert "cluster.secret" in out.stdout and "JUNCTION_SECRET" in out.stdout, out
    out = subprocess.run([BINARY, "scheduler", "--config", config, "--id", "1"], capture_output=True, text=True, timeout=20, env=env)
    assert out.returncode != 0 and "JUNCTION_SECRET" in out.stderr, out
    # With it set, the file is right for every process: the listen address has a default.
    out = subprocess.run([BINARY, "config", "check", "--config", config], capture_output=True, text=True, timeout=20,
                         env={**env, "JUNCTION_SECRET": SECRET})
    assert out.returncode == 0 and "ok" in out.stdout, out


def test_without_an_id_a_host_name_without_an_ordinal_is_refused(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare, to give the process a host name of its own")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"cluster": {"secret": SECRET, "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]},
                                  "scheduler": {"data_dir": str(tmp_path / "d")}}))
    out = subprocess.run(["unshare", "--uts", "sh", "-c", 'hostname plainhost && exec "$@"', "x", BINARY, "scheduler", "--config", str(config)],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "--id is required" in out.stderr and "plainhost" in out.stderr, out
