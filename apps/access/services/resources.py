"""Resource configuration as a service: the admin and ``manage.py bootstrap`` both go here.

A resource definition is a mapping of Resource field names to values (the same keys the
bootstrap file uses, see docs/using.md "Policy as code"). ``apply_definitions`` validates every
definition before writing any, so a bad file changes nothing; applying the same file
twice changes nothing the second time (no rows, no audit entries, no syncs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from apps.access.actions import AccessAction
from apps.audit import services as audit
from apps.audit.services import MASK, record

from ..models import AccessLevel, Resource
from ..sync import request_sync
from .clock import expire_requests_of_archived

CONFIG_FIELDS = (
    "slug",
    "name",
    "description",
    "zero_policy_name",
    "cluster",
    "routes",
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
    "approval_stages",
    "auto_approve_rules",
    "break_glass_groups",
    "break_glass_max_minutes",
    "slack_webhook_url",
    "slack_channel",
    "is_active",
    "schedule",
)
# The bootstrap file's ``levels`` list: each entry a mapping of these AccessLevel fields.
LEVEL_FIELDS = (
    "slug",
    "name",
    "rank",
    "criteria",
    "max_duration_minutes",
    "approvals_required",
    "approval_stages",
    "auto_approve_rules",
)

# Credentials: a change is audited by name only, never by value.
SECRET_FIELDS = {"slack_webhook_url"}

# Fields whose change alters the Zero policy's text (rules, name, explanation).
POLICY_FIELDS = {"slug", "name", "zero_policy_name", "cluster", "base_ppl", "is_active"}


class DefinitionError(Exception):
    """A definition is invalid; the message names the entry and field."""


# Other top-level sections of the bootstrap file, each applied by the app that owns its
# rows: name -> apply(value, *, actor) returning a one-line summary, raising DefinitionError.
# The domain does not know those apps; they register here in their AppConfig.ready().
_SECTIONS: dict[str, Callable[..., str]] = {}


def register_section(name: str, apply: Callable[..., str]) -> None:
    _SECTIONS[name] = apply


def sections() -> dict[str, Callable[..., str]]:
    return dict(_SECTIONS)


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


def level_state(level: AccessLevel) -> dict[str, Any]:
    """A level's settings as the bootstrap file and the audit trail write them."""
    return {name: getattr(level, name) for name in LEVEL_FIELDS}


def _prepare_levels(where: str, resource: Resource, entries: Any) -> list[AccessLevel] | None:
    """Validated AccessLevel rows for ``entries`` (unsaved), or None when none are given."""
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise DefinitionError(f"{where}: 'levels' must be a list.")
    existing = {lv.slug: lv for lv in resource.levels.all()} if resource.pk else {}
    levels, slugs, ranks = [], set(), set()
    for i, entry in enumerate(entries):
        here = f"{where} levels[{i}]"
        if not isinstance(entry, Mapping):
            raise DefinitionError(f"{here}: each level must be a mapping.")
        unknown = sorted(set(entry) - set(LEVEL_FIELDS))
        if unknown:
            raise DefinitionError(f"{here}: unknown setting(s) {', '.join(unknown)}.")
        slug = entry.get("slug")
        if not isinstance(slug, str) or not slug:
            raise DefinitionError(f"{here}: 'slug' is required.")
        level = existing.get(slug) or AccessLevel(slug=slug, rank=i)
        level.resource = resource
        for name, value in entry.items():
            setattr(level, name, value)
        if not level.name:
            level.name = slug
        if slug in slugs or level.rank in ranks:
            raise DefinitionError(f"{here}: slug and rank must be unique within the resource.")
        slugs.add(slug)
        ranks.add(level.rank)
        try:
            level.full_clean(exclude=["resource"], validate_unique=False)
        except ValidationError as exc:
            raise DefinitionError(_describe_errors(here, exc)) from None
        levels.append(level)
    return levels


def _levels_differ(resource: Resource, levels: list[AccessLevel] | None) -> bool:
    if levels is None or resource.pk is None:
        return bool(levels)
    have = sorted((level_state(lv) for lv in resource.levels.all()), key=lambda d: d["slug"])
    want = sorted((level_state(lv) for lv in levels), key=lambda d: d["slug"])
    return have != want


def _write_levels(resource: Resource, levels: list[AccessLevel]) -> None:
    keep = {lv.slug for lv in levels}
    # Ranks are unique per resource: park the kept rows out of the way first.
    gone = resource.levels.exclude(slug__in=keep)
    try:
        with transaction.atomic():
            gone.delete()
    except ProtectedError:
        names = ", ".join(sorted(gone.values_list("slug", flat=True)))
        raise DefinitionError(
            f"{resource.slug}: level(s) {names} are used by requests or grants and stay; "
            "keep them in the file."
        ) from None
    for offset, level in enumerate(resource.levels.order_by("pk")):
        AccessLevel.objects.filter(pk=level.pk).update(rank=30000 + offset)
    for level in levels:
        level.resource = resource
        level.save()


def save_levels(resource: Resource, formset: Any, *, actor: Any) -> None:
    """Save the admin's level formset and audit ``resource.changed`` with ``levels``.

    Levels do not change existing grants (each grant keeps the criteria it was approved
    with), so no sync is needed.
    """
    with audit.atomic():
        before = [level_state(lv) for lv in resource.levels.all()]
        formset.save()
        after = [level_state(lv) for lv in resource.levels.all()]
        if before != after:
            record(
                AccessAction.RESOURCE_CHANGED,
                actor=actor,
                target=resource,
                resource_slug=resource.slug,
                details={
                    "changed": ["levels"],
                    "changes": {"levels": [before, after]},
                    "levels": after,
                },
            )


def _prepare(
    index: int, definition: Any
) -> tuple[Resource, list[str], bool, list[AccessLevel] | None]:
    where = f"resources[{index}]"
    if not isinstance(definition, Mapping):
        raise DefinitionError(f"{where}: each resource must be a mapping of settings.")
    definition = dict(definition)
    level_entries = definition.pop("levels", None)
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
    levels = _prepare_levels(where, resource, level_entries)
    if _levels_differ(resource, levels):
        changed.append("levels")
    else:
        levels = None
    return resource, changed, created, levels


def save_resource(
    resource: Resource,
    *,
    actor: Any,
    changed: Iterable[str],
    created: bool,
    levels: list[AccessLevel] | None = None,
) -> Resource:
    """Save a validated resource, audit what changed, and resync its policy if needed.

    Audits one ``resource.created`` or ``resource.changed`` entry: the changed field names
    (``changed``) and, for a change, each field's old and new value (``changes``; the Slack
    webhook URL, a credential, only as masked). The admin and ``bootstrap`` both come here:
    it is the one chained entry of a configuration change. A cluster change is checked
    again under the resource's row lock (the form checked it before): raises
    ``ValidationError`` and writes nothing when a grant became live in the old cluster
    meanwhile (``Resource.cluster_problem``). Archiving (``is_active`` to false) expires the
    resource's open requests in the same transaction
    (``services.expire_requests_of_archived``); its grants run their course.
    """
    changed = sorted(set(changed))
    fields = [name for name in changed if name != "levels"]  # levels are rows of their own
    with audit.atomic():
        details: dict[str, Any] = {"changed": changed}
        if not created and fields:
            before = Resource.objects.select_for_update().values(*fields).get(pk=resource.pk)
            details["changes"] = {
                name: [MASK, MASK]
                if name in SECRET_FIELDS
                else [before[name], getattr(resource, name)]
                for name in fields
            }
            problem = resource.cluster_problem() if "cluster" in changed else ""
            if problem:
                raise ValidationError({"cluster": problem})
        old_levels = (
            [level_state(lv) for lv in resource.levels.all()]
            if levels is not None and not created
            else []
        )
        resource.save()
        if levels is not None:
            _write_levels(resource, levels)
            new_levels = [level_state(lv) for lv in resource.levels.all()]
            details["levels"] = new_levels
            if not created:
                details.setdefault("changes", {})["levels"] = [old_levels, new_levels]
        record(
            AccessAction.RESOURCE_CREATED if created else AccessAction.RESOURCE_CHANGED,
            actor=actor,
            target=resource,
            resource_slug=resource.slug,
            details=details,
        )
        if not created and "is_active" in changed and not resource.is_active:
            # Archived: its open requests expire with it, in this transaction.
            expire_requests_of_archived(resource, actor=actor)
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
            resource, changed, created, levels = _prepare(index, definition)
            if resource.slug in seen:
                raise DefinitionError(f"resources[{index}]: slug {resource.slug!r} appears twice.")
            seen.add(resource.slug)
            prepared.append((resource, changed, created, levels))
        for resource, changed, created, levels in prepared:
            try:
                _save_prepared(resource, changed, created, levels, actor, summary)
            except ValidationError as exc:
                raise DefinitionError(
                    _describe_errors(f"resources ({resource.slug})", exc)
                ) from None
    return summary


def _save_prepared(
    resource: Resource,
    changed: list[str],
    created: bool,
    levels: Any,
    actor: Any,
    summary: ApplySummary,
) -> None:
    if created:
        save_resource(resource, actor=actor, changed=changed, created=True, levels=levels)
        summary.created.append(resource.slug)
    elif changed:
        save_resource(resource, actor=actor, changed=changed, created=False, levels=levels)
        summary.updated.append(resource.slug)
    else:
        summary.unchanged.append(resource.slug)
