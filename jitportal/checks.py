"""Cross-field configuration checks (``manage.py check``; ``--deploy`` adds the production ones)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register, run_checks

from apps.access import pomerium_targets, zero_clusters

LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC_TAG = "jitportal_static"
MANIFEST = "staticfiles.json"


@register(STATIC_TAG)
def static_files_collected(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Production serves static files from a manifest that only ``collectstatic`` writes.

    Without it every page that links a stylesheet is a 500 while /healthz says ok, so the
    portal refuses to start instead (``refuse_to_start_without_static``, from wsgi.py).
    """
    backend = settings.STORAGES["staticfiles"]["BACKEND"]
    if settings.DEBUG or "Manifest" not in backend:
        return []
    manifest = Path(settings.STATIC_ROOT) / MANIFEST
    if manifest.is_file():
        return []
    return [
        Error(
            f"Static files have not been collected ({manifest} is missing): run "
            "'python manage.py collectstatic --noinput' before starting the portal.",
            id="jitportal.E003",
        )
    ]


def refuse_to_start_without_static() -> None:
    """Exit with one readable line when static files are missing (called at start-up)."""
    errors = [e for e in run_checks(tags=[STATIC_TAG]) if e.is_serious()]
    if errors:
        sys.stderr.write(f"jitportal refuses to start: {errors[0].msg}\n")
        sys.stderr.flush()
        raise SystemExit(3)  # gunicorn's "worker failed to boot": the arbiter stops too


@register(Tags.security)
def pomerium_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    found: dict[str, pomerium_targets.Target] = {}
    try:
        found = pomerium_targets.target_set(
            cluster_id=settings.CLUSTER_ID,
            zero=dict(settings.ZERO_CLUSTERS),
            default_name=settings.ZERO_DEFAULT_CLUSTER,
            core_url=settings.POMERIUM_CORE_URL,
            targets=dict(settings.POMERIUM_TARGETS),
            shared_secret=settings.POMERIUM_SHARED_SECRET,
            api_token=settings.POMERIUM_API_TOKEN,
        )
    except (zero_clusters.ClusterConfigError, pomerium_targets.TargetConfigError) as exc:
        problems.append(Error(f"{exc}.", id="jitportal.E004"))
    if settings.ZERO_SYNC_ENABLED:
        has_zero = any(t.flavour == pomerium_targets.ZERO and t.address for t in found.values())
        has_other = any(t.flavour != pomerium_targets.ZERO for t in found.values())
        missing = []
        if has_zero or not has_other:
            # Zero's v0 API needs its token and organization; a Core needs only its own.
            missing = [n for n in ("API_USER_TOKEN", "ORGANIZATION_ID") if not getattr(settings, n)]
        if not has_zero and not has_other:
            missing.append("CLUSTER_ID (or ZERO_CLUSTERS)")
        if missing:
            problems.append(
                Error(
                    "Zero sync is enabled but " + ", ".join(missing) + " is not set.",
                    hint="Set them (see README 'Configuration'), or POMERIUM_CORE_URL for a "
                    "Pomerium Core, or ZERO_SYNC_ENABLED=false.",
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


@register(Tags.security)
def slack_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    """A Slack app that posts buttons must be able to verify the clicks (docs/slack.md)."""
    if settings.SLACK_BOT_TOKEN and not settings.SLACK_SIGNING_SECRET:
        return [
            Warning(
                "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: requests are posted "
                "with Approve/Reject buttons, and /slack/interactions refuses every click.",
                hint="Set SLACK_SIGNING_SECRET (or SLACK_SIGNING_SECRET_FILE) from the Slack "
                "app's Basic Information page.",
                id="jitportal.W020",
            )
        ]
    return []
