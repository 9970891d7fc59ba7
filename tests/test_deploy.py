"""The deployment files: the registries they mount load, and the commands point at them."""

import re
import shlex
from pathlib import Path

import yaml

from maro.agents.registry import ModelRegistry

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_k8s_arena_mounts_a_registry_that_loads(tmp_path):
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "k8s" / "arena.yaml").read_text())}
    models = tmp_path / "models.toml"
    models.write_text(docs["ConfigMap"]["data"]["models.toml"])
    registry = ModelRegistry.load(models, environ={"OPENAI_API_KEY": "sk-test"})
    assert registry.settings("smollm2").api_base == "http://maro-model:8000/v1"  # the model Service
    spec = docs["StatefulSet"]["spec"]["template"]["spec"]
    (arena,) = spec["containers"]
    args = arena["args"]
    mount = next(m["mountPath"] for m in arena["volumeMounts"] if m["name"] == "models")
    assert args[args.index("--registry") + 1] == f"{mount}/models.toml"
    assert spec["volumes"][0]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    model_service = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "model.yaml").read_text())
                     if d["kind"] == "Service"][0]
    assert model_service["metadata"]["name"] == "maro-model" and model_service["spec"]["ports"][0]["port"] == 8000


def test_compose_arena_mounts_the_deploy_registry():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    arena = compose["services"]["arena"]
    source, target, _ = arena["volumes"][0].split(":")
    assert (DEPLOY / source).resolve() == DEPLOY / "models.toml"
    assert arena["command"][arena["command"].index("--registry") + 1] == target
    registry = ModelRegistry.load(DEPLOY / "models.toml", environ={})
    assert registry.settings("smollm2").api_base == "http://model:8008/v1"
    assert "model" in compose["services"] and "vllm" in compose["services"]


def test_both_manifests_give_the_arena_a_key_file_since_it_listens_beyond_loopback(tmp_path):
    from maro.arena.auth import add_principal
    from maro.arena.transport.grpc.server import ArenaConfig

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["arena"]
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "k8s" / "arena.yaml").read_text())}
    spec = docs["StatefulSet"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    keys = tmp_path / "arena-keys.toml"
    add_principal(keys, "alice", "player")
    for args in (compose["command"], container["args"]):
        host = args[args.index("--host") + 1]
        ArenaConfig(host=host, keys=keys)  # what the arena then accepts
    assert any(v.endswith(":" + compose["command"][compose["command"].index("--keys") + 1] + ":ro")
               for v in compose["volumes"])
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "keys")
    assert container["args"][container["args"].index("--keys") + 1].startswith(mount + "/")
    secret = next(v for v in spec["volumes"] if v["name"] == "keys")["secret"]["secretName"]
    assert secret == "maro-arena-keys"


def cli_params(args: list[str], env: dict[str, str]) -> dict:
    """The options `maro ARGS` parses to (with Kubernetes' $(VAR) filled in from `env`), without running it."""
    import typer.main

    from maro.learner.cli import app

    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], a) for a in args]
    command, ctx = typer.main.get_command(app), None
    while hasattr(command, "get_command"):  # a group: its subcommand is the next argument
        ctx = command.context_class(command, info_name=command.name, parent=ctx)
        command = command.get_command(ctx, args.pop(0))
        assert command is not None, "no such command"
    return command.make_context(command.name, args, parent=ctx).params


def test_k8s_replicas_advertise_their_names_under_the_headless_service_and_hold_leases():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "arena.yaml").read_text()))
    stateful = next(d for d in docs if d["kind"] == "StatefulSet")
    headless = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None")
    assert stateful["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["selector"] == stateful["spec"]["template"]["metadata"]["labels"]
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    params = cli_params(container["args"], {"POD_NAME": "maro-arena-0", "MARO_DB_URL": "postgresql+psycopg://db/m"})
    assert params["replica_id"] == "maro-arena-0" and params["db"] == "postgresql+psycopg://db/m"
    assert params["advertise"] == f"maro-arena-0.{headless['metadata']['name']}:{params['port']}"
    assert params["lease"] >= 1 and params["workers"] == 1
    assert stateful["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 0


def test_compose_arena_command_parses():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    params = cli_params(compose["services"]["arena"]["command"], {})
    assert params["db"].startswith("postgresql+psycopg://") and params["host"] == "0.0.0.0"


def test_k8s_ray_job_runs_selfplay_on_the_cluster_with_one_run_folder_for_every_node():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "ray.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[0] == "maro"
    params = cli_params(args[1:], {})
    assert params["ray"] == "auto" and params["arena_host"] == "0.0.0.0" and params["model_server_kind"] == "vllm"
    cluster = job["spec"]["rayClusterSpec"]
    groups = cluster["workerGroupSpecs"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in groups]
    for pod in pods:  # every node sees the run folder at the same path
        (container,) = pod["containers"]
        mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "runs")
        assert str(params["run_dir"]).startswith(mount + "/")
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert any("nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"].get("limits", {})
               for g in cluster["workerGroupSpecs"])
    manifests = list(yaml.safe_load_all((DEPLOY / "k8s" / "model.yaml").read_text()))
    model = next(d for d in manifests if d["kind"] == "Deployment")
    vllm = model["spec"]["template"]["spec"]
    mount = next(m["mountPath"] for m in vllm["containers"][0]["volumeMounts"] if m["name"] == "runs")
    assert str(params["run_dir"]).startswith(mount + "/")  # vLLM loads the run's adapters by path
    assert vllm["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    service = next(d for d in manifests if d["kind"] == "Service")
    assert params["model_server"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_compose_ray_workers_join_the_head_that_runs_selfplay():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    head, worker = services["ray-head"], services["ray-worker"]
    start, selfplay = head["command"][0].split(" && exec ")
    assert shlex.split(start)[:3] == ["ray", "start", "--head"]
    port = shlex.split(start)[shlex.split(start).index("--port") + 1]
    params = cli_params(shlex.split(selfplay)[1:], {})
    assert params["ray"] == "auto" and params["model_server"] == "http://vllm:8000"
    assert worker["command"][worker["command"].index("--address") + 1] == f"ray-head:{port}"
    assert "runs:/runs" in head["volumes"] and "runs:/runs" in worker["volumes"]
    assert any(v.startswith("runs:/runs") for v in services["vllm"]["volumes"])
