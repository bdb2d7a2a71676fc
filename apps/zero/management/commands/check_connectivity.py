"""``manage.py check_connectivity``: can this deployment reach what it depends on?

One line per check, ``ok`` or ``FAIL`` with the reason: the Zero token exchange, the
cluster's namespace, listing its policies, the JWKS endpoint, and the task broker.
Exit 0 when every check passes, 1 otherwise. No token or password is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu import Connection

from apps.zero.client import ZeroClient


def _secrets() -> list[str]:
    found = [settings.API_USER_TOKEN]
    password = urlsplit(settings.CELERY_BROKER_URL).password
    if password:
        found.append(password)
    return [s for s in found if s]


def _clean(text: str) -> str:
    """One line, with every secret we know of removed."""
    for secret in sorted(_secrets(), key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return " ".join(text.split())


class Command(BaseCommand):
    help = "Check Zero, the JWKS endpoint and the broker; one ok/FAIL line each."

    def handle(self, *args: Any, **options: Any) -> None:
        client = ZeroClient.from_settings()  # a fresh client: really exchange a token
        checks: list[tuple[str, Callable[[], str]]] = [
            ("Zero token exchange", lambda: self._token(client)),
            ("Zero namespace lookup", lambda: self._namespace(client)),
            ("Zero policy list access", lambda: self._policies(client)),
            ("JWKS endpoint", self._jwks),
            ("Task broker", self._broker),
        ]
        failures = 0
        try:
            for name, check in checks:
                try:
                    detail = check()
                except Exception as exc:
                    failures += 1
                    reason = str(exc) or type(exc).__name__
                    self.stdout.write(f"FAIL  {name}: {_clean(reason)}")
                else:
                    self.stdout.write(f"ok    {name}: {_clean(detail)}")
        finally:
            client.session.close()
        if failures:
            raise CommandError(f"{failures} of {len(checks)} checks failed", returncode=1)

    def _token(self, client: ZeroClient) -> str:
        lifetime = client.authenticate()
        return f"ID token obtained from {client.base_url}, valid for {lifetime:.0f} s"

    def _namespace(self, client: ZeroClient) -> str:
        return f"cluster {client.cluster_id} uses namespace {client.namespace_id()}"

    def _policies(self, client: ZeroClient) -> str:
        return f"{len(client.list_policies())} policies readable"

    def _jwks(self) -> str:
        url = settings.JWKS_ENDPOINT
        if not url:
            raise ValueError("JWKS_ENDPOINT is not set")
        response = requests.get(url, timeout=settings.JWKS_TIMEOUT_SECONDS)
        if response.status_code != 200:
            raise ValueError(f"GET {url} returned {response.status_code}")
        try:
            keys = response.json()["keys"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{url} did not answer with a JSON key set") from None
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"{url} publishes no keys")
        return f"{len(keys)} key(s) at {url}"

    def _broker(self) -> str:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
            connect_timeout=3,
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=1)
            return f"connected to {conn.as_uri()}"
