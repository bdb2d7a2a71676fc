"""Production configuration: refuses to start unsafe, passes check --deploy, logs JSON."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.processes import run_manage

ROOT = Path(__file__).resolve().parents[1]

# Production refuses to start without collected static files (jitportal.E003): give these
# checks a collected (empty) manifest, as the image has.
COLLECTED = Path(tempfile.mkdtemp(prefix="jitportal-static-"))
(COLLECTED / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "jit.example.com",
    "JWKS_ENDPOINT": "https://jit.example.com/.well-known/pomerium/jwks.json",
    "POMERIUM_JWT_AUDIENCE": "jit.example.com",
    "DATABASE_URL": "postgres://jitportal@db.internal:5432/jitportal",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "PORTAL_URL": "https://jit.example.com",
    "API_USER_TOKEN": "zero-api-token-for-the-test",
    "ORGANIZATION_ID": "org",
    "CLUSTER_ID": "cluster",
    "STATIC_ROOT": str(COLLECTED),
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the basics from this process: the settings under test come from ``env`` alone.
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return run_manage(*args, env={**clean, **env})


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "JWKS_ENDPOINT",
        "POMERIUM_JWT_AUDIENCE",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
    ],
)
def test_production_refuses_to_start_without_required_settings(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "Refusing to start in production mode" in result.stderr
    assert missing in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one readable line
    assert PRODUCTION["API_USER_TOKEN"] not in result.stderr


def test_production_settings_pass_check_deploy() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("command", ["run_demo", "seed_demo", "zero_simulator"])
def test_production_has_no_dev_tools(command: str) -> None:
    """Production settings install no devtools app, so its commands do not exist there."""
    listing = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.INSTALLED_APPS)",
        env=PRODUCTION,
    )
    assert listing.returncode == 0, listing.stderr
    assert "apps.access" in listing.stdout
    assert "devtools" not in listing.stdout
    result = manage(command, "--help", env=PRODUCTION)
    assert result.returncode != 0
    assert f"Unknown command: '{command}'" in result.stderr


def test_development_installs_the_dev_tools() -> None:
    result = manage("help", "run_demo", env={**PRODUCTION, "DEBUG": "true"})
    assert result.returncode == 0, result.stderr
    assert "run_demo" in result.stdout


def test_zero_sync_without_its_settings_is_an_error() -> None:
    env = {**PRODUCTION, "ORGANIZATION_ID": "", "ZERO_SYNC_ENABLED": "true"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "jitportal.E001" in result.stderr


def test_secret_from_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(PRODUCTION["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(key_file)
    assert manage("check", env=env).returncode == 0
    env["SECRET_KEY_FILE"] = str(tmp_path / "missing")
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr


def test_json_log_lines_carry_the_request_id() -> None:
    from apps.audit import context
    from apps.audit.logging import JsonFormatter, RequestContextFilter

    token = context.activate(context.AuditContext(request_id="req-abc12345"))
    try:
        record = logging.makeLogRecord(
            {
                "name": "apps.x",
                "levelname": "INFO",
                "msg": "hello %s",
                "args": ("world",),
                "reason": "expired",
            }
        )
        RequestContextFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        context.deactivate(token)
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-abc12345"
    assert line["reason"] == "expired"


@pytest.mark.parametrize("entry", ["jitportal.wsgi", "jitportal.celery"])
def test_web_and_worker_refuse_with_the_same_one_line(entry: str) -> None:
    """gunicorn imports jitportal.wsgi and Celery jitportal.celery: both refuse like manage.py."""
    env = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "-c", f"import {entry}"],
        env={**clean, **env},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "jitportal refuses to start: Refusing to start in production mode (DEBUG is false) "
        "without: DATABASE_URL. Set them, or set DEBUG=true for local development."
    ]


def _database_options(env: dict[str, str]) -> dict[str, object]:
    result = manage(
        "shell",
        "-c",
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_prepares_statements_unless_told_not_to() -> None:
    assert _database_options(PRODUCTION) == {"server_side_binding": True, "prepare_threshold": 5}
    # Behind a transaction-pooling PgBouncer without prepared-statement support.
    off = _database_options({**PRODUCTION, "DATABASE_PREPARED_STATEMENTS": "false"})
    assert "server_side_binding" not in off and "prepare_threshold" not in off
    assert _database_options({**PRODUCTION, "DATABASE_PREPARE_THRESHOLD": "2"}) == {
        "server_side_binding": True,
        "prepare_threshold": 2,
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_repeated_query_is_planned_once_per_connection() -> None:
    """The ORM's statements reach PostgreSQL with separate parameters, and a statement the
    connection runs often is prepared: the server keeps its plan (pg_prepared_statements)."""
    from django.db import connection

    from apps.accounts.models import User

    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    for n in range(threshold + 1):
        list(User.objects.filter(username=f"nobody-{n}"))  # a new value each time, one text
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "accounts_user" WHERE "accounts_user"."username" = $1%'],
        )
        (prepared,) = cursor.fetchone()
    assert prepared == 1
