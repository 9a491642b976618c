"""docker-compose.yml checked structurally: Docker cannot run on these machines."""

import importlib.util
import itertools
import re
import shutil
from pathlib import Path

import yaml
from support.env import BIN, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SECRETS = ("DAGSTER_PG_PASSWORD", "RAG_API_KEY")


def _env_example() -> set[str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}


def test_the_stack_has_every_service() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "chroma",
        "code",
        "webserver",
        "daemon",
        "worker",
        "api",
        "prometheus",
        "grafana",
    }
    monitoring = {name for name, service in SERVICES.items() if service.get("profiles")}
    assert monitoring == {"prometheus", "grafana"}, "monitoring starts only under its profile"
    assert all(SERVICES[name]["profiles"] == ["monitoring"] for name in monitoring)
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]
    for name in ("code", "daemon", "worker", "api", "chroma"):
        assert any(v.startswith("data:") for v in SERVICES[name]["volumes"]), name


def test_every_command_points_at_something_that_exists() -> None:
    for name, service in SERVICES.items():
        # Services from other images (Redis) bring their own commands.
        if "command" not in service or "build" not in service:
            continue
        command = service["command"]
        assert (BIN / command[0]).exists() or shutil.which(command[0]), (name, command[0])
        for flag, value in itertools.pairwise(command):
            if flag == "-m":
                assert importlib.util.find_spec(value) is not None, (name, value)
            if flag == "-w":
                assert (REPO / Path(value).name).exists(), (name, value)


def test_the_workspace_points_at_the_code_server() -> None:
    workspace = yaml.safe_load((REPO / "workspace.docker.yaml").read_text())
    [location] = workspace["load_from"]
    command = SERVICES["code"]["command"]
    assert location["grpc_server"]["host"] == "code"
    assert str(location["grpc_server"]["port"]) == command[command.index("-p") + 1]


def test_environment_matches_env_example_and_settings() -> None:
    from rag_pipeline.settings import Settings
    from rag_pipeline.settings_table import env_names

    env = COMPOSE["x-rag-env"]
    documented = _env_example()
    assert set(env) - documented == set()
    preferred = {env_names(field, name)[0] for name, field in Settings.model_fields.items()}
    for name in env:
        assert name in preferred or name.startswith("DAGSTER_"), (
            f"{name} is set for the services but is not a setting's RAG_ name"
        )
    raw = (REPO / "docker-compose.yml").read_text()
    for secret in SECRETS:
        assert re.search(rf"\$\{{{secret}:\?", raw), f"{secret} must be required with ${{VAR:?}}"
    # Every password or key value is a ${...} reference, never a literal.
    for key, value in re.findall(r"^\s*(\w*(?:PASSWORD|KEY)):\s*(.+)$", raw, flags=re.M):
        assert value.strip().startswith("${"), f"{key} has a literal value"


def test_the_image_installs_the_project_and_the_postgres_instance_config() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "pip install --no-cache-dir ." in dockerfile
    assert "COPY dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in dockerfile
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    db = config["storage"]["postgres"]["postgres_db"]
    assert {v["env"] for k, v in db.items() if isinstance(v, dict)} <= _env_example()


def test_the_registry_lives_in_its_own_database_on_the_instance_server() -> None:
    env = COMPOSE["x-rag-env"]
    url = env["RAG_REGISTRY_URL"]
    assert url.startswith("postgresql+psycopg2://") and "@postgres:5432/" in url
    database = url.rsplit("/", 1)[1]
    assert database != env["DAGSTER_PG_DB"], "alembic histories would collide"
    mounts = [v for v in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    [mount] = mounts
    init = REPO / mount.split(":")[0]
    scripts = " ".join(p.read_text() for p in sorted(init.glob("*.sql")))
    assert f"CREATE DATABASE {database};" in scripts


def test_the_worker_tier_scales_with_compose() -> None:
    """`docker compose up --scale worker=N`: any number of workers from one definition, next to
    the daemon that launches runs onto them."""
    worker, daemon = SERVICES["worker"], SERVICES["daemon"]
    assert worker["command"] == ["rag-pipeline", "worker"]
    # A fixed name or a host port would stop the second replica from starting.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["build"] == daemon["build"] and worker["environment"] == daemon["environment"]
    # Every run executes on a worker, backups too.
    assert {v.split(":")[0] for v in worker["volumes"]} >= {"data", "backups"}
    for name in ("postgres", "redis", "chroma"):
        assert worker["depends_on"][name] == {"condition": "service_healthy"}, name
    assert daemon["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_runs_wait_in_the_broker_and_their_state_in_the_instance_server() -> None:
    env = COMPOSE["x-rag-env"]
    broker = env["RAG_BROKER_URL"]
    assert broker.startswith("redis://redis:6379/")
    backend = env["RAG_RESULT_BACKEND"]
    # Persistent, so run monitoring can read a task's state after the worker is gone: the
    # instance's own database, where Celery's two tables sit beside Dagster's.
    assert backend.startswith("db+postgresql+psycopg2://")
    assert backend.endswith(f"@postgres:5432/{env['DAGSTER_PG_DB']}")
    assert any(v.startswith("redis:") for v in SERVICES["redis"]["volumes"])


def test_prometheus_scrapes_the_api_and_the_dashboard_shows_only_metrics_it_serves() -> None:
    import json

    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:8000"]}]
    # /metrics wants the admin key: the file it is read from is written when Prometheus starts.
    key_file = job["authorization"]["credentials_file"]
    assert key_file in " ".join(SERVICES["prometheus"]["command"])
    mounts = {v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert {"./deploy/grafana/provisioning", "./deploy/grafana/dashboards"} <= mounts

    dashboard = json.loads((REPO / "deploy/grafana/dashboards/rag-ingest.json").read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\brag_[a-z_]+", target["expr"])
    }
    served = set()
    for module in ("rag_api/metrics.py", "rag_pipeline/orchestration/metrics.py"):
        served |= set(re.findall(r'"(rag_[a-z_]+)"', (REPO / module).read_text()))
    assert len(used) >= 10
    assert used <= served, used - served
