"""Recurring campaigns: one per period of each schedule (docs/access-reviews.md).

Schedules come from the settings (``ACCESS_REVIEW_EVERY`` and friends: every active
resource) and from the bootstrap file's ``reviews:`` section (``ReviewSchedule`` rows,
written here, audited as ``review.schedule_changed``). The reviews tick calls
``open_due``: a schedule whose current period has no campaign yet gets one, due
``due_days`` later, owned by the schedule's owner (a person who signed in at least once,
an auditor or superuser) and opened by the system. The campaign's ``schedule_key`` is
unique, so two ticks at once open it once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.access.models import Resource
from apps.access.services.resources import DefinitionError
from apps.access.states import AccessError
from apps.accounts.emails import normalize_email
from apps.audit import services as audit
from apps.audit.services import record

from .actions import ReviewAction
from .models import Campaign, ReviewSchedule
from .periods import EVERY, period_start
from .services import may_run, open_campaign

log = logging.getLogger(__name__)

SETTINGS_KEY = "settings"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = ("key", "name", "every", "due_days", "owner", "resources", "reviewer_group", "active")


@dataclass(frozen=True)
class Spec:
    key: str
    name: str
    every: str
    due_days: int
    owner_email: str
    resources: tuple[str, ...]  # slugs; empty: every active resource
    reviewer_group: str


def specs() -> list[Spec]:
    """Every active schedule: the settings' (if any), then the bootstrap file's."""
    found = []
    if settings.ACCESS_REVIEW_EVERY:
        found.append(
            Spec(
                SETTINGS_KEY,
                "Access review",
                settings.ACCESS_REVIEW_EVERY,
                settings.ACCESS_REVIEW_DUE_DAYS,
                settings.ACCESS_REVIEW_OWNER,
                (),
                settings.ACCESS_REVIEW_REVIEWER_GROUP,
            )
        )
    for row in ReviewSchedule.objects.filter(is_active=True):
        found.append(
            Spec(
                row.key,
                row.name,
                row.every,
                row.due_days,
                row.owner_email,
                tuple(row.resources),
                row.reviewer_group,
            )
        )
    return found


def period_label(every: str, start: datetime) -> str:
    if every == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if every == "half-year":
        return f"{start.year}-H{(start.month - 1) // 6 + 1}"
    if every == "year":
        return str(start.year)
    return f"{start:%Y-%m}"


def open_due(now: datetime | None = None) -> list[Campaign]:
    """Open the campaign of each schedule's current period that has none yet."""
    now = now or timezone.now()
    opened = []
    for spec in specs():
        start = period_start(spec.every, now)
        key = f"{spec.key}:{start.date().isoformat()}"
        if Campaign.objects.filter(schedule_key=key).exists():
            continue
        owner = (
            get_user_model()
            .objects.filter(email_key=normalize_email(spec.owner_email), is_active=True)
            .first()
        )
        if owner is None or not may_run(owner):
            log.warning(
                "access review schedule %s: owner %s is not an auditor or superuser who "
                "signed in; no campaign opened",
                spec.key,
                spec.owner_email,
            )
            continue
        resources = (
            list(Resource.objects.filter(slug__in=spec.resources)) if spec.resources else None
        )
        try:
            with transaction.atomic():
                opened.append(
                    open_campaign(
                        owner=owner,
                        name=f"{spec.name} {period_label(spec.every, start)}",
                        due_at=now + timedelta(days=spec.due_days),
                        resources=resources,
                        reviewer_group=spec.reviewer_group,
                        schedule_key=key,
                        now=now,
                    )
                )
        except IntegrityError:
            continue  # another tick opened it a moment ago
        except AccessError as exc:
            log.warning("access review schedule %s: %s", spec.key, exc)
    return opened


# --- the bootstrap file's ``reviews:`` section --------------------------------------------------


def _definition(index: int, entry: Any) -> dict[str, Any]:
    where = f"reviews[{index}]"
    if not isinstance(entry, Mapping):
        raise DefinitionError(f"{where}: each review schedule must be a mapping.")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise DefinitionError(f"{where}: unknown setting(s) {', '.join(unknown)}.")
    key = entry.get("key")
    if not isinstance(key, str) or not _KEY.match(key) or key == SETTINGS_KEY:
        raise DefinitionError(f"{where}: 'key' must be a slug (a-z, 0-9, - or _), not 'settings'.")
    where = f"reviews[{index}] ({key})"
    every = entry.get("every")
    if every not in EVERY:
        raise DefinitionError(f"{where}: 'every' must be one of {', '.join(EVERY)}.")
    owner = entry.get("owner")
    if not isinstance(owner, str) or "@" not in owner:
        raise DefinitionError(f"{where}: 'owner' must be an email.")
    due_days = entry.get("due_days", 14)
    if not isinstance(due_days, int) or isinstance(due_days, bool) or not 1 <= due_days <= 365:
        raise DefinitionError(f"{where}: 'due_days' must be a number of days from 1 to 365.")
    scope = entry.get("resources", "all")
    if scope == "all":
        slugs: list[str] = []
    elif isinstance(scope, list) and scope and all(isinstance(s, str) for s in scope):
        slugs = sorted(set(scope))
        missing = sorted(
            set(slugs) - set(Resource.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        )
        if missing:
            raise DefinitionError(f"{where}: no resource {', '.join(missing)}.")
    else:
        raise DefinitionError(f"{where}: 'resources' must be 'all' or a list of slugs.")
    name = entry.get("name", key)
    group = entry.get("reviewer_group", "")
    active = entry.get("active", True)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise DefinitionError(f"{where}: 'name' must be text of at most 200 characters.")
    if not isinstance(group, str) or len(group) > 150:
        raise DefinitionError(f"{where}: 'reviewer_group' must be a group name.")
    if not isinstance(active, bool):
        raise DefinitionError(f"{where}: 'active' must be true or false.")
    return {
        "key": key,
        "name": name.strip(),
        "every": every,
        "due_days": due_days,
        "owner_email": owner.strip(),
        "resources": slugs,
        "reviewer_group": group.strip(),
        "is_active": active,
    }


def apply_bootstrap_section(entries: Any, *, actor: Any = None) -> str:
    """Create or update review schedules from the bootstrap file, all or nothing."""
    if not isinstance(entries, list):
        raise DefinitionError("'reviews' must be a list.")
    wanted = [_definition(i, entry) for i, entry in enumerate(entries)]
    keys = [w["key"] for w in wanted]
    if len(set(keys)) != len(keys):
        raise DefinitionError("reviews: a key appears twice.")
    created = updated = unchanged = 0
    with audit.atomic():
        for values in wanted:
            row = ReviewSchedule.objects.filter(key=values["key"]).first()
            before = None if row is None else {k: getattr(row, k) for k in values}
            if before == values:
                unchanged += 1
                continue
            ReviewSchedule.objects.update_or_create(key=values["key"], defaults=values)
            record(
                ReviewAction.SCHEDULE_CHANGED,
                actor=actor,
                details={"schedule": values["key"], "before": before, "after": values},
            )
            created += row is None
            updated += row is not None
    return f"{created} created, {updated} updated, {unchanged} unchanged"
