"""Demo data: the example resources, the demo people, and a history with every state.

History is made through the real services with past times, so the demo's audit trail,
grants and Zero policies are exactly what production would produce. Idempotent: once
the story is there, seeding again only re-applies the resource definitions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.access import clusters, schedules, services
from apps.access.models import AccessRequest, Resource
from apps.access.services.resources import ApplySummary, apply_definitions, save_resource
from apps.accounts.assertion import Identity
from apps.accounts.models import User
from apps.accounts.services import sync_user

from .identities import DEMO_IDENTITIES
from .supervisor import CORE_ROUTE, CORE_TARGET, PAGERDUTY_SCHEDULE, SLACK_CHANNEL

RESOURCES_FILE = Path(settings.BASE_DIR) / "deploy" / "resources.example.yaml"
# The demo runs two clusters (staging, the default, and production); the production
# resources live there. The example file names no cluster, so it also suits one-cluster
# installs; these are added only when a production cluster is configured.
PRODUCTION_RESOURCES = ("prod-db", "billing-admin")
# The demo's Pomerium Core target: one resource whose rule the worker must remove itself.
EDGE_RESOURCE = {
    "slug": "edge-console",
    "name": "Edge router console",
    "description": "Admin console of the edge routers, behind Pomerium Core: jitportal's "
    "worker removes the rule when the grant ends.",
    "cluster": CORE_TARGET,
    "approver_groups": ["approvers"],
    "duration_choices": [30, 60],
    "max_duration_minutes": 60,
}


def demo_users() -> dict[str, User]:
    """Create the demo people exactly as their first sign-in through Pomerium would."""
    return {
        i.key: sync_user(Identity(sub=i.sub, email=i.email, name=i.name, groups=i.groups))
        for i in DEMO_IDENTITIES
    }


def seed(now: datetime | None = None) -> tuple[ApplySummary, bool]:
    """Apply the resources and, the first time, write the story. Returns (summary, wrote_story)."""
    now = now or timezone.now()
    definitions = yaml.safe_load(RESOURCES_FILE.read_text(encoding="utf-8"))["resources"]
    if settings.SLACK_BOT_TOKEN:
        # The demo's Slack stand-in: every resource posts its requests to one channel.
        definitions = [{**d, "slack_channel": SLACK_CHANNEL} for d in definitions]
    if settings.PAGERDUTY_TOKEN:
        definitions.append(
            {
                "slug": "incident-console",
                "name": "Incident console",
                "description": "Whoever is on call in PagerDuty gets it at once; others ask.",
                "approver_groups": ["approvers"],
                "duration_choices": [60, 240],
                "max_duration_minutes": 240,
                "auto_approve_rules": [
                    {
                        "oncall": {"provider": "pagerduty", "schedule": PAGERDUTY_SCHEDULE},
                        "max_minutes": 240,
                    }
                ],
                **({"slack_channel": SLACK_CHANNEL} if settings.SLACK_BOT_TOKEN else {}),
            }
        )
    if "production" in clusters.configured():
        definitions = [
            {**d, "cluster": "production"} if d.get("slug") in PRODUCTION_RESOURCES else d
            for d in definitions
        ]
    edge = CORE_TARGET in clusters.configured()
    if edge:
        channel = {"slack_channel": SLACK_CHANNEL} if settings.SLACK_BOT_TOKEN else {}
        definitions.append({**EDGE_RESOURCE, **channel})
    summary = apply_definitions(definitions)
    if edge:
        _attach_edge_route()
    users = demo_users()
    if AccessRequest.objects.exists():
        return summary, False
    with transaction.atomic():
        _story(users, now)
    services.expire_due(now)
    return summary, True


def _attach_edge_route() -> None:
    """The edge resource's policy goes on the Core stand-in's route (``Resource.routes``
    is no definition key), saved and audited as the admin saves it; each sync attaches
    the policy to the route. Only when it differs, so a second seed writes nothing."""
    edge = Resource.objects.get(slug=EDGE_RESOURCE["slug"])
    if edge.routes == [CORE_ROUTE]:
        return
    edge.routes = [CORE_ROUTE]
    edge.full_clean()
    save_resource(edge, actor=None, changed=["routes"], created=False)


def _in_a_window(resource: Resource, before: datetime) -> datetime:
    """An hour into the latest window of ``resource``'s schedule that opened at least two
    days before ``before``: a request to start now is taken only inside a window."""
    schedule = resource.parsed_schedule()
    latest = before - timedelta(days=2)
    if schedule is None:
        return latest
    for opens, closes in schedules.windows(
        schedule, latest - timedelta(days=8), latest, reverse=True
    ):
        return min(opens + timedelta(hours=1), closes - timedelta(minutes=10))
    return latest  # pragma: no cover - every schedule has a window each week


def _next_opening(resource: Resource, at: datetime) -> datetime | None:
    """None inside a window of ``resource``'s schedule (start now), else the next opening."""
    schedule = resource.parsed_schedule()
    state = schedules.state_at(schedule, at, at, at + timedelta(days=8)) if schedule else None
    return None if state is None or state[0] else state[1]


def _story(u: dict[str, User], now: datetime) -> None:
    grafana = Resource.objects.get(slug="grafana-admin")
    prod_db = Resource.objects.get(slug="prod-db")
    billing = Resource.objects.get(slug="billing-admin")
    day = timedelta(days=1)
    # The prod DB opens on weekdays only: its history happened inside a window.
    in_window = _in_a_window(prod_db, now)

    # Rejected: Alice asked for the prod DB two days ago; Bob said no.
    r = services.submit_request(
        requester=u["alice"],
        resource=prod_db,
        duration_minutes=60,
        ticket="INC-2211",
        justification="Check the orders table for the double charges",
        now=in_window,
    )
    services.reject_request(
        r,
        approver=u["bob"],
        reason="Use the read replica for that",
        now=in_window + timedelta(minutes=9),
    )
    # Expired undecided: Dave's prod DB request nobody looked at.
    services.submit_request(
        requester=u["dave"],
        resource=prod_db,
        duration_minutes=30,
        ticket="CHG-0991",
        justification="Rotate the reporting user's password",
        now=in_window,
    )
    # Approved, then over: Alice had billing admin for an hour yesterday.
    r = services.submit_request(
        requester=u["alice"],
        resource=billing,
        duration_minutes=60,
        justification="Refund the duplicate invoices for ACME",
        now=now - day,
    )
    services.approve_request(r, approver=u["bob"], now=now - day + timedelta(minutes=5))
    # Revoked: Erin's billing grant, ended early by Bob.
    r = services.submit_request(
        requester=u["erin"],
        resource=billing,
        duration_minutes=240,
        justification="Quarter-end reconciliation with finance",
        now=now - timedelta(hours=5),
    )
    g = services.approve_request(r, approver=u["bob"], now=now - timedelta(hours=5))
    assert g is not None
    services.revoke_grant(
        g, actor=u["bob"], reason="Reconciliation finished", now=now - timedelta(hours=3)
    )
    # Break-glass, over and waiting for review: Bob (SRE) during last night's outage. (Dave's
    # own break-glass is the demo story's: an unreviewed one of his would refuse it.)
    services.break_glass(
        user=u["bob"],
        resource=billing,
        duration_minutes=60,
        justification="Payments failing, need to pause the dunning run",
        now=now - timedelta(hours=10),
    )
    # Cancelled: Erin changed her mind about Grafana.
    r = services.submit_request(
        requester=u["erin"],
        resource=grafana,
        duration_minutes=60,
        justification="Tune the latency alert thresholds",
        now=now - timedelta(hours=2),
    )
    services.cancel_request(r, actor=u["erin"], now=now - timedelta(hours=2) + timedelta(minutes=3))
    # Active via auto-approval: Dave is on call.
    services.submit_request(
        requester=u["dave"],
        resource=grafana,
        duration_minutes=240,
        justification="On call: silence the flapping disk alerts",
        now=now - timedelta(minutes=30),
    )
    services.expire_due(now - timedelta(hours=1, minutes=30))  # yesterday's grants are over
    # Scheduled: Alice's billing window tomorrow morning.
    start = (now + day).replace(hour=9, minute=0, second=0, microsecond=0)
    r = services.submit_request(
        requester=u["alice"],
        resource=billing,
        duration_minutes=240,
        start_at=start,
        justification="Migrate the price plans to the new catalogue",
        now=now - timedelta(hours=1),
    )
    services.approve_request(r, approver=u["bob"], now=now - timedelta(minutes=50))
    # Pending with one of two approvals: Bob's own prod DB request, Erin approved; outside
    # the weekday window it asks to start when the next one opens.
    asked = now - timedelta(minutes=20)
    r = services.submit_request(
        requester=u["bob"],
        resource=prod_db,
        duration_minutes=60,
        ticket="CHG-1042",
        justification="Apply the index migration by hand",
        start_at=_next_opening(prod_db, asked),
        now=asked,
    )
    services.approve_request(
        r, approver=u["erin"], note="Looks fine", now=now - timedelta(minutes=10)
    )
