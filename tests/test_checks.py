"""The configuration checks, run in this process with the settings each one is about.

tests/test_settings.py starts ``manage.py`` with production environments to prove a bad
configuration stops the portal; here every check id is provoked and cleared one by one.
"""

from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path

import pytest
from django.core.checks import Tags, run_checks
from django.test import override_settings

from jitportal.checks import MANIFEST, STATIC_TAG, refuse_to_start_without_static

PRODUCTION_LIKE = {
    "JWKS_ENDPOINT": "https://jit.example.com/.well-known/pomerium/jwks.json",
    "ZERO_API_URL": "https://console.pomerium.app/api/v0",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "PORTAL_URL": "https://jit.example.com",
    "ZERO_SYNC_ENABLED": True,
    "API_USER_TOKEN": "zero-api-token-for-the-test",
    "ORGANIZATION_ID": "org",
    "CLUSTER_ID": "cluster",
    "ZERO_AUTH_SCHEME": "Bearer",
}
POSTGRES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "jitportal"}}
SQLITE = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "jitportal.db"}}
MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"
PLAIN_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"


def ours(*, deploy: bool, **settings: object) -> dict[str, str]:
    """The jitportal security checks' ids and messages under ``settings``."""
    with override_settings(**{**PRODUCTION_LIKE, **settings}):
        found = run_checks(tags=[Tags.security], include_deployment_checks=deploy)
    return {m.id: m.msg for m in found if m.id and m.id.startswith("jitportal.")}


def storages(backend: str) -> dict[str, dict[str, str]]:
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": backend},
    }


# DATABASES is overridden only for the check to read; no connection is made with it.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def test_production_like_settings_pass_every_check():
    assert ours(deploy=True, DATABASES=POSTGRES) == {}


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("JWKS_ENDPOINT", "http://jit.example.com/.well-known/pomerium/jwks.json", "W001"),
        ("ZERO_API_URL", "http://zero.internal/api/v0", "W002"),
        ("CELERY_BROKER_URL", "filesystem://", "W003"),
        ("DATABASES", SQLITE, "W004"),
        ("PORTAL_URL", "http://jit.example.com", "W005"),
    ],
)
def test_each_demo_part_is_a_deploy_warning(setting, value, check_id):
    settings = {"DATABASES": POSTGRES, setting: value}

    with_deploy = ours(deploy=True, **settings)
    without = ours(deploy=False, **settings)

    assert list(with_deploy) == [f"jitportal.{check_id}"]
    assert without == {}  # only `check --deploy` asks for these


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost", "[::1]:9443"])
def test_a_loopback_jwks_endpoint_may_be_plain_http(host):
    jwks = f"http://{host}/.well-known/pomerium/jwks.json"

    assert ours(deploy=True, DATABASES=POSTGRES, JWKS_ENDPOINT=jwks) == {}


def test_zero_sync_names_exactly_the_missing_settings():
    missing = ours(deploy=False, ORGANIZATION_ID="", CLUSTER_ID="")
    disabled = ours(deploy=False, ZERO_SYNC_ENABLED=False, API_USER_TOKEN="", CLUSTER_ID="")

    assert missing == {
        "jitportal.E001": "Zero sync is enabled but ORGANIZATION_ID, CLUSTER_ID (or ZERO_CLUSTERS) "
        "is not set."
    }
    assert disabled == {}


@pytest.mark.parametrize(("scheme", "ids"), [("Basic", ["jitportal.E002"]), ("Pomerium", [])])
def test_the_zero_auth_scheme_is_bearer_or_pomerium(scheme, ids):
    assert list(ours(deploy=False, ZERO_AUTH_SCHEME=scheme)) == ids


def static_ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [m.id or "" for m in run_checks(tags=[STATIC_TAG])]


def test_production_storage_without_collected_files_is_e003(tmp_path):
    production = {"DEBUG": False, "STATIC_ROOT": str(tmp_path)}

    missing = static_ids(STORAGES=storages(MANIFEST_STORAGE), **production)
    (tmp_path / MANIFEST).write_text('{"paths": {}, "version": "1.1"}')
    collected = static_ids(STORAGES=storages(MANIFEST_STORAGE), **production)
    (tmp_path / MANIFEST).unlink()
    debug = static_ids(STORAGES=storages(MANIFEST_STORAGE), DEBUG=True, STATIC_ROOT=tmp_path)
    plain = static_ids(STORAGES=storages(PLAIN_STORAGE), **production)

    assert (missing, collected, debug, plain) == (["jitportal.E003"], [], [], [])


def test_start_up_refuses_in_one_line_without_collected_files(tmp_path, capsys):
    manifest = Path(tmp_path) / MANIFEST
    settings = {"DEBUG": False, "STATIC_ROOT": str(tmp_path)}

    with override_settings(STORAGES=storages(MANIFEST_STORAGE), **settings):
        with pytest.raises(SystemExit) as refused:
            refuse_to_start_without_static()
        said = capsys.readouterr().err
        manifest.write_text('{"paths": {}, "version": "1.1"}')
        refuse_to_start_without_static()  # collected: starts

    assert refused.value.code == 3
    assert said == (
        f"jitportal refuses to start: Static files have not been collected ({manifest} is "
        "missing): run 'python manage.py collectstatic --noinput' before starting the portal.\n"
    )
    assert capsys.readouterr().err == ""


# transaction=True: a real request starts by closing connections that are not in autocommit,
# which the test's wrapping transaction would be (Django's test client unhooks that; a bare
# WSGI call does not).
@pytest.mark.django_db(transaction=True)
def test_the_wsgi_application_answers_healthz():
    """gunicorn's entry point, imported here: it loads, passes the static check and serves."""
    module = (
        importlib.reload(sys.modules["jitportal.wsgi"])
        if "jitportal.wsgi" in sys.modules
        else importlib.import_module("jitportal.wsgi")
    )
    seen: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/healthz",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }

    body = b"".join(module.application(environ, lambda status, headers: seen.append(status)))

    assert seen == ["200 OK"]
    assert body == b"ok\n"


def test_a_slack_bot_without_a_signing_secret_is_warned_about(settings: object) -> None:
    from jitportal.checks import slack_checks

    settings.SLACK_BOT_TOKEN = "xoxb-1"
    settings.SLACK_SIGNING_SECRET = ""
    (warning,) = slack_checks(None)
    assert warning.id == "jitportal.W020"
    settings.SLACK_SIGNING_SECRET = "s"
    assert slack_checks(None) == []
