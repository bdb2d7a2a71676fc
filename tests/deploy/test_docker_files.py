"""What the running stack cannot show about the Dockerfile and docker-compose.yaml.

tests/deploy/test_stack.py builds the image and starts the stack; what it proves is not
repeated here. These read the files for what a run does not exercise: the image declares a
non-root user, the build context leaves secrets out, only Pomerium publishes ports (the test
publishes web itself, on loopback), the guide's settings and Pomerium's service (not started
in the test), the internal network, and no frontend fetched from Docker Hub (the test builds
with the legacy builder, which would ignore the line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "notifier", "beat")
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


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def env_names(service: dict[str, Any]) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {item.split("=", 1)[0] for item in environment}
    return set(environment)


# --- Dockerfile ---------------------------------------------------------------------------


def test_final_stage_runs_as_a_non_root_user():
    users = [rest for k, rest in final_stage() if k == "USER"]

    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("app", "10001")
    created = " ".join(rest for k, rest in final_stage() if k == "RUN")
    assert "useradd" in created
    assert "--uid 10001" in created


def test_gunicorn_config_reads_workers_and_timeouts_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    config: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), config)  # noqa: S102 - our file

    assert config["workers"] == 7
    assert config["bind"] == "0.0.0.0:8000"
    assert (config["timeout"], config["graceful_timeout"]) == (30, 30)
    assert config["accesslog"] == "-"


def test_dockerfile_fetches_no_frontend_image():
    first_lines = (ROOT / "Dockerfile").read_text().splitlines()[:5]

    assert not [line for line in first_lines if re.match(r"#\s*syntax\s*=", line)]


def test_gunicorn_control_socket_is_off_unless_a_path_is_given(monkeypatch):
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    default: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), default)  # noqa: S102 - our file
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/dev/shm/gunicorn.ctl")
    chosen: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), chosen)  # noqa: S102 - our file

    assert default["control_socket_disable"] is True
    assert "control_socket" not in default
    assert (chosen["control_socket_disable"], chosen["control_socket"]) == (
        False,
        "/dev/shm/gunicorn.ctl",
    )


def test_gunicorn_defaults_to_three_workers(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    config: dict[str, Any] = {}
    exec((ROOT / "jitportal" / "gunicorn.conf.py").read_text(), config)  # noqa: S102 - our file

    assert config["workers"] == 3


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())

    assert {".git", ".venv", ".env", "demo-data", "db.sqlite3"} <= ignored


# --- docker-compose.yaml ----------------------------------------------------------------


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


def test_shared_env_requires_a_secret_key_and_defaults_to_the_route_hosts_jwks(compose):
    env = compose["x-jitportal-env"]

    assert env["SECRET_KEY"] == "${SECRET_KEY:?set SECRET_KEY}"
    assert env["JWKS_ENDPOINT"].endswith("/.well-known/pomerium/jwks.json}")


def test_database_and_broker_sit_on_an_internal_network_only(compose):
    services = compose["services"]

    for name in ("postgres", "redis"):
        [network] = services[name]["networks"]
        assert compose["networks"][network]["internal"] is True
    assert "backend" not in services["pomerium"]["networks"]
