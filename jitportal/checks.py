"""Cross-field configuration checks (``manage.py check``; ``--deploy`` adds the production ones)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@register(Tags.security)
def pomerium_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if settings.ZERO_SYNC_ENABLED:
        missing = [
            n
            for n in ("API_USER_TOKEN", "ORGANIZATION_ID", "CLUSTER_ID")
            if not getattr(settings, n)
        ]
        if missing:
            problems.append(
                Error(
                    "Zero sync is enabled but " + ", ".join(missing) + " is not set.",
                    hint="Set them (see README 'Configuration'), or ZERO_SYNC_ENABLED=false.",
                    id="jitportal.E001",
                )
            )
    if settings.ZERO_AUTH_SCHEME not in ("Bearer", "Pomerium"):
        problems.append(Error("ZERO_AUTH_SCHEME must be Bearer or Pomerium.", id="jitportal.E002"))
    return problems


@register(Tags.security, deploy=True)
def deploy_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    jwks = urlsplit(settings.JWKS_ENDPOINT)
    if jwks.scheme != "https" and jwks.hostname not in LOOPBACK:
        problems.append(
            Warning(
                "JWKS_ENDPOINT is not https: the signing keys could be swapped in transit.",
                hint="Use https://<route host>/.well-known/pomerium/jwks.json.",
                id="jitportal.W001",
            )
        )
    if urlsplit(settings.ZERO_API_URL).scheme != "https":
        problems.append(Warning("ZERO_API_URL is not https.", id="jitportal.W002"))
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        problems.append(
            Warning(
                "The filesystem broker is for the demo; production needs Redis.",
                hint="Set CELERY_BROKER_URL=redis://…",
                id="jitportal.W003",
            )
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Warning("SQLite is for the demo; production needs PostgreSQL.", id="jitportal.W004")
        )
    if not settings.PORTAL_URL.startswith("https://"):
        problems.append(
            Warning(
                "PORTAL_URL should be the portal's https:// address behind Pomerium.",
                id="jitportal.W005",
            )
        )
    return problems
