"""What matters in the Dockerfile and docker-compose.yaml, checked by parsing them.

No Docker engine runs in development or CI here, so these files cannot be built or
started in tests; instead each property that keeps the deployment safe is asserted on
the text (Dockerfile) or the parsed YAML (compose).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat")
GUIDE_ENV = ("API_USER_TOKEN", "ORGANIZATION_ID", "CLUSTER_ID", "JWKS_ENDPOINT")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs with continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def arg_default(name: str) -> str | None:
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG" and rest.startswith(f"{name}="):
            return rest.split("=", 1)[1]
    return None


def base_image(from_args: str) -> str:
    image = from_args.split()[0]
    match = re.fullmatch(r"\$\{?(\w+)\}?", image)
    return (arg_default(match.group(1)) or "") if match else image


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def env_names(service: dict[str, Any]) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {item.split("=", 1)[0] for item in environment}
    return set(environment)


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_slim_python():
    all_stages = stages()

    assert len(all_stages) >= 2
    for stage in all_stages:
        assert re.fullmatch(r"python:3\.\d+-slim", base_image(stage[0][1]))
    assert any(k == "COPY" and "--from=builder" in rest for k, rest in final_stage())


def test_builder_builds_wheels_with_the_constraints():
    builder = " ".join(rest for k, rest in stages()[0] if k == "RUN")

    assert "pip wheel" in builder
    assert "-c constraints.txt" in builder


def test_final_stage_runs_as_a_non_root_user():
    users = [rest for k, rest in final_stage() if k == "USER"]

    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("app", "10001")
    created = " ".join(rest for k, rest in final_stage() if k == "RUN")
    assert "useradd" in created
    assert "--uid 10001" in created


def test_healthcheck_probes_healthz_without_curl():
    [healthcheck] = [rest for k, rest in final_stage() if k == "HEALTHCHECK"]

    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck
    assert "curl" not in healthcheck


def test_static_files_are_collected_at_build_with_build_only_settings():
    runs = [rest for k, rest in final_stage() if k == "RUN"]
    [collect] = [r for r in runs if "collectstatic" in r]

    assert "--noinput" in collect
    assert "SECRET_KEY=build-only" in collect
    # The dummies are set for that RUN only, never baked into the image's environment.
    env_lines = " ".join(rest for k, rest in final_stage() if k == "ENV")
    assert "SECRET_KEY" not in env_lines
    assert "JWKS_ENDPOINT" not in env_lines
    assert re.search(r"\bDEBUG=false\b", env_lines)


def test_default_command_is_gunicorn_with_the_config_file():
    cmd = [rest for k, rest in final_stage() if k == "CMD"][-1]
    argv = yaml.safe_load(cmd)  # exec form is a JSON array

    assert argv[0] == "gunicorn"
    assert "jitportal.wsgi:application" in argv
    assert "jitportal/gunicorn.conf.py" in argv
    assert ("EXPOSE", "8000") in final_stage()


def test_gunicorn_config_reads_workers_and_timeouts_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    config: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), config)  # noqa: S102 - our file

    assert config["workers"] == 7
    assert config["bind"] == "0.0.0.0:8000"
    assert (config["timeout"], config["graceful_timeout"]) == (30, 30)
    assert config["accesslog"] == "-"


def test_gunicorn_defaults_to_three_workers(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    config: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), config)  # noqa: S102 - our file

    assert config["workers"] == 3


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())

    assert {".git", ".venv", ".env", "demo-data", "db.sqlite3"} <= ignored


# --- docker-compose.yaml ----------------------------------------------------------------


def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= {
        "pomerium",
        "migrate",
        "web",
        "worker",
        "beat",
        "postgres",
        "redis",
    }


def test_only_pomerium_publishes_ports(compose):
    publishing = {name for name, service in compose["services"].items() if "ports" in service}

    assert publishing == {"pomerium"}
    assert {str(p) for p in compose["services"]["pomerium"]["ports"]} == {"443:443", "80:80"}
    assert [str(p) for p in compose["services"]["web"]["expose"]] == ["8000"]


def test_pomerium_is_the_guides_pinned_zero_image(compose):
    pomerium = compose["services"]["pomerium"]

    assert re.fullmatch(r"pomerium/pomerium@sha256:[0-9a-f]{64}", pomerium["image"])
    assert "POMERIUM_ZERO_TOKEN" in env_names(pomerium)
    assert "pomerium-cache:/data" in pomerium["volumes"]
    assert pomerium["restart"] == "always"


@pytest.mark.parametrize("name", [*APP_SERVICES, "migrate"])
def test_app_services_carry_the_guides_env_names_and_ours(compose, name):
    names = env_names(compose["services"][name])

    assert set(GUIDE_ENV) <= names
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= names
    assert {"POMERIUM_JWT_AUDIENCE", "PORTAL_URL", "PORTAL_ADMIN_GROUPS"} <= names


def test_shared_env_requires_a_secret_key_and_points_at_postgres_and_redis(compose):
    env = compose["x-jitportal-env"]

    assert env["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert env["JWKS_ENDPOINT"].endswith("/.well-known/pomerium/jwks.json}")


def test_app_services_share_one_image_and_run_by_command(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in (*APP_SERVICES, "migrate")}

    assert len(images) == 1
    assert command_of(services["web"])[0] == "gunicorn"
    assert command_of(services["worker"])[:4] == ["celery", "-A", "jitportal", "worker"]
    assert command_of(services["beat"])[:4] == ["celery", "-A", "jitportal", "beat"]
    assert command_of(services["migrate"]) == ["python", "manage.py", "migrate", "--noinput"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_storage_and_finished_migrations(compose, name):
    depends = compose["services"][name]["depends_on"]

    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_migrate_is_one_shot_after_postgres(compose):
    migrate = compose["services"]["migrate"]

    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_healthchecks_on_postgres_redis_and_web(compose):
    services = compose["services"]

    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    # The image's /healthz check would mark containers without a web server unhealthy.
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["beat"]["healthcheck"] == {"disable": True}


def test_database_and_broker_sit_on_an_internal_network_only(compose):
    services = compose["services"]

    for name in ("postgres", "redis"):
        [network] = services[name]["networks"]
        assert compose["networks"][network]["internal"] is True
    assert "backend" not in services["pomerium"]["networks"]


def test_named_volumes_are_declared_and_used(compose):
    assert set(compose["volumes"]) == {"pomerium-cache", "postgres-data", "redis-data"}
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]
