"""Resource configuration as a service: the admin and ``manage.py bootstrap`` both go here.

A resource definition is a mapping of Resource field names to values (the same keys the
bootstrap file uses, see README "Policy as code"). ``apply_definitions`` validates every
definition before writing any, so a bad file changes nothing; applying the same file
twice changes nothing the second time (no rows, no audit entries, no syncs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from apps.audit import services as audit
from apps.audit.models import AuditAction
from apps.audit.services import MASK, record

from .models import Resource
from .sync import request_sync

CONFIG_FIELDS = (
    "slug",
    "name",
    "description",
    "zero_policy_name",
    "requester_groups",
    "approver_groups",
    "duration_choices",
    "max_duration_minutes",
    "justification_required",
    "justification_min_length",
    "ticket_required",
    "allow_scheduled",
    "max_schedule_ahead_days",
    "base_ppl",
    "approvals_required",
    "auto_approve_rules",
    "break_glass_groups",
    "break_glass_max_minutes",
    "slack_webhook_url",
    "is_active",
)

# Credentials: a change is audited by name only, never by value.
SECRET_FIELDS = {"slack_webhook_url"}

# Fields whose change alters the Zero policy's text (rules, name, explanation).
POLICY_FIELDS = {"slug", "name", "zero_policy_name", "base_ppl", "is_active"}


class DefinitionError(Exception):
    """A definition is invalid; the message names the entry and field."""


@dataclass
class ApplySummary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


def _describe_errors(where: str, exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        parts = [f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items()]
    else:
        parts = list(exc.messages)
    return f"{where}: " + "; ".join(parts)


def _prepare(index: int, definition: Any) -> tuple[Resource, list[str], bool]:
    where = f"resources[{index}]"
    if not isinstance(definition, Mapping):
        raise DefinitionError(f"{where}: each resource must be a mapping of settings.")
    unknown = sorted(set(definition) - set(CONFIG_FIELDS))
    if unknown:
        raise DefinitionError(f"{where}: unknown setting(s) {', '.join(unknown)}.")
    slug = definition.get("slug")
    if not isinstance(slug, str) or not slug:
        raise DefinitionError(f"{where}: 'slug' is required.")
    where = f"resources[{index}] ({slug})"
    resource = Resource.objects.filter(slug=slug).first()
    created = resource is None
    if resource is None:
        resource = Resource(slug=slug)
    changed = []
    for name, value in definition.items():
        if getattr(resource, name) != value:
            setattr(resource, name, value)
            changed.append(name)
    try:
        resource.full_clean(validate_unique=created)
    except ValidationError as exc:
        raise DefinitionError(_describe_errors(where, exc)) from None
    return resource, changed, created


def save_resource(
    resource: Resource, *, actor: Any, changed: Iterable[str], created: bool
) -> Resource:
    """Save a validated resource, audit what changed, and resync its policy if needed.

    Audits one ``resource.created`` or ``resource.changed`` entry: the changed field names
    (``changed``) and, for a change, each field's old and new value (``changes``; the Slack
    webhook URL, a credential, only as masked). The admin and ``bootstrap`` both come here:
    it is the one chained entry of a configuration change.
    """
    changed = sorted(set(changed))
    with audit.atomic():
        details: dict[str, Any] = {"changed": changed}
        if not created and changed:
            before = Resource.objects.select_for_update().values(*changed).get(pk=resource.pk)
            details["changes"] = {
                name: [MASK, MASK]
                if name in SECRET_FIELDS
                else [before[name], getattr(resource, name)]
                for name in changed
            }
        resource.save()
        record(
            AuditAction.RESOURCE_CREATED if created else AuditAction.RESOURCE_CHANGED,
            actor=actor,
            target=resource,
            resource_slug=resource.slug,
            details=details,
        )
        if created or POLICY_FIELDS & set(changed):
            request_sync(resource)
    return resource


def apply_definitions(definitions: Any, *, actor: Any = None) -> ApplySummary:
    """Create or update resources from definitions, all or nothing.

    Raises ``DefinitionError`` (and writes nothing) if any entry is invalid or a slug
    repeats.
    """
    if not isinstance(definitions, list):
        raise DefinitionError("'resources' must be a list.")
    summary = ApplySummary()
    with audit.atomic():
        seen: set[str] = set()
        prepared = []
        for index, definition in enumerate(definitions):
            resource, changed, created = _prepare(index, definition)
            if resource.slug in seen:
                raise DefinitionError(f"resources[{index}]: slug {resource.slug!r} appears twice.")
            seen.add(resource.slug)
            prepared.append((resource, changed, created))
        for resource, changed, created in prepared:
            if created:
                save_resource(resource, actor=actor, changed=changed, created=True)
                summary.created.append(resource.slug)
            elif changed:
                save_resource(resource, actor=actor, changed=changed, created=False)
                summary.updated.append(resource.slug)
            else:
                summary.unchanged.append(resource.slug)
    return summary
