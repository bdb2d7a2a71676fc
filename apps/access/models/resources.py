"""Resources and their access levels, and the checks of their rules and text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from apps.kit.text import hidden_in
from apps.ppl import criteria_errors, validate_ppl

from .. import oncall, schedules, stages, targets, visibility
from ..clusters import configured as configured_clusters
from ..clusters import default_cluster_name
from ..durations import duration_label
from ..states import (
    SyncStatus,
)
from .offers import open_to
from .querysets import ResourceQuerySet, RestrictedQuerySet

if TYPE_CHECKING:
    from apps.accounts.models import User


AUTO_RULES_HELP = (
    'A list like [{"group": "oncall", "max_minutes": 240}] or [{"oncall": {"provider": '
    '"pagerduty", "schedule": "P123ABC"}, "max_minutes": 240}] (provider: pagerduty or opsgenie).'
)


def default_durations() -> list[int]:
    return [60, 240, 480]


class Resource(models.Model):
    """Something behind Pomerium that people ask for: one managed Zero policy each."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    zero_policy_name = models.CharField(
        max_length=120,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]*$", "Letters, digits, . _ : -")],
        help_text="Name of the Pomerium Zero policy the portal manages; default jit-<slug>.",
    )
    cluster = models.CharField(
        max_length=32,
        default=default_cluster_name,
        help_text="The Pomerium Zero cluster whose namespace holds this resource's policy: "
        "a name from ZERO_CLUSTERS, or default (CLUSTER_ID). It can change only while no grant "
        "is live or waiting for its removal to be confirmed.",
    )
    requester_groups = models.JSONField(
        default=list, blank=True, help_text="Groups that may ask; empty means everyone signed in."
    )
    approver_groups = models.JSONField(
        default=list, blank=True, help_text="Groups that may decide; superusers always may."
    )
    duration_choices = models.JSONField(
        default=default_durations, help_text="Durations offered, in minutes."
    )
    max_duration_minutes = models.PositiveIntegerField(
        default=480,
        validators=[MinValueValidator(1)],
        help_text="Hard maximum of a grant, counted from its start (extensions included).",
    )
    justification_required = models.BooleanField(default=True)
    justification_min_length = models.PositiveIntegerField(default=10)
    ticket_required = models.BooleanField(default=False)
    allow_scheduled = models.BooleanField(
        default=True, help_text="Requesters may choose a start time in the future."
    )
    max_schedule_ahead_days = models.PositiveIntegerField(default=30)
    base_ppl = models.JSONField(
        default=list,
        blank=True,
        help_text="Always-on PPL rules kept in the policy, e.g. an SRE group's allow rule.",
    )
    routes = models.JSONField(
        default=list,
        blank=True,
        help_text='Ids of the Pomerium routes this resource\'s policy protects, e.g. ["r-1"]. '
        "On a ConfigService target (Core, Enterprise) the portal adds the policy's id to each "
        "route's policyIds and changes nothing else on the route. Empty: attach the policy "
        'yourself (docs/sync.md "Routes").',
    )
    # Approval policy
    approvals_required = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Distinct approvals needed."
    )
    approval_stages = models.JSONField(
        default=list,
        blank=True,
        help_text="Optional ordered stages, each with its own approver groups and count, e.g. "
        '[{"name": "Team lead", "groups": ["team-leads"], "count": 1}, {"name": "Security", '
        '"groups": ["security"], "count": 1}]. Empty: one stage of approvals_required '
        "(docs/approval-stages.md).",
    )
    auto_approve_rules = models.JSONField(
        default=list,
        blank=True,
        help_text='e.g. [{"group": "oncall", "max_minutes": 240}]: members get up to '
        "max_minutes without review.",
    )
    break_glass_groups = models.JSONField(
        default=list, blank=True, help_text="Groups that may self-activate in an emergency."
    )
    break_glass_max_minutes = models.PositiveIntegerField(default=60)
    schedule = models.JSONField(
        null=True,
        blank=True,
        help_text='Optional recurring window inside every grant, e.g. {"days": "mon-fri", '
        '"after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}.',
    )
    slack_webhook_url = models.URLField(blank=True, help_text="Optional Slack incoming webhook.")
    slack_channel = models.CharField(
        max_length=32,
        blank=True,
        validators=[
            RegexValidator(
                r"^[CG][A-Z0-9]{6,30}$", "A Slack channel id such as C0123456789 (not its name)."
            )
        ],
        help_text="Optional Slack channel id where the portal's Slack app posts each request "
        "with Approve / Reject buttons (needs SLACK_BOT_TOKEN; docs/slack.md).",
    )
    is_active = models.BooleanField(default=True, help_text="Archived resources take no requests.")
    # Sync bookkeeping: bumped with every change that alters the desired policy.
    sync_generation = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[ResourceQuerySet] = ResourceQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def resource_slug_for_audit(self) -> str:
        return self.slug

    @property
    def policy_name(self) -> str:
        return self.zero_policy_name or f"jit-{self.slug}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        choices = self.duration_choices
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, int) and c > 0 for c in choices)
        ):
            errors["duration_choices"] = "A list of positive whole minutes, e.g. [60, 240]."
        elif max(choices) > self.max_duration_minutes:
            errors["duration_choices"] = "No offered duration may exceed the maximum."
        for name in ("requester_groups", "approver_groups", "break_glass_groups"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
                errors[name] = 'A list of group names, e.g. ["sre"].'
        if not _auto_rules_ok(self.auto_approve_rules):
            errors["auto_approve_rules"] = AUTO_RULES_HELP
        stage_problem = stages.problems(self.approval_stages, self.approver_groups or [])
        if stage_problem:
            errors["approval_stages"] = stage_problem
        if not isinstance(self.base_ppl, list) or not all(
            isinstance(r, dict) for r in self.base_ppl
        ):
            errors["base_ppl"] = "A list of PPL rules (JSON objects)."
        else:
            problems = validate_ppl(self.base_ppl)
            if problems:
                errors["base_ppl"] = "; ".join(problems[:3])
        if not isinstance(self.routes, list) or not all(
            isinstance(r, str) and r.strip() and r == r.strip() for r in self.routes
        ):
            errors["routes"] = 'A list of route ids, e.g. ["r-1"].'
        elif self.routes and targets.ROUTES not in targets.capabilities(self.cluster):
            errors["routes"] = (
                f"Target {self.cluster!r} does not let the portal attach policies to routes: "
                "leave this empty and attach the policy in its console."
            )
        if self.break_glass_max_minutes > self.max_duration_minutes:
            errors["break_glass_max_minutes"] = "May not exceed the maximum duration."
        cluster_problem = self.cluster_problem()
        if cluster_problem:
            errors["cluster"] = cluster_problem
        problems = schedules.schedule_errors(self.schedule)
        if problems:
            errors["schedule"] = problems[0]
        errors = {**hidden_errors(self, RESOURCE_TEXT), **errors}
        if errors:
            raise ValidationError(errors)

    def cluster_problem(self) -> str:
        """Why ``cluster`` cannot be saved as it is, or "".

        It must name a configured cluster. Moving an existing resource to another cluster is
        refused while any of its grants is not confirmed removed: the old cluster's policy
        would keep letting those people in (or a revocation there could no longer be
        confirmed), so the move waits until every grant has ended and Zero confirmed it.
        """
        known = configured_clusters()
        if self.cluster not in known:
            return f"Unknown cluster {self.cluster!r}; configured: {', '.join(known)}."
        if self.pk is None:
            return ""
        stored = Resource.objects.filter(pk=self.pk).values_list("cluster", flat=True).first()
        if stored is None or stored == self.cluster:
            return ""
        unsettled = self.grants.exclude(sync_status=SyncStatus.REMOVED).count()
        if unsettled:
            return (
                f"Cannot move to cluster {self.cluster!r} while {unsettled} grant(s) are live "
                f"or not confirmed removed in cluster {stored!r}; revoke them and wait for "
                "Zero to confirm, then move."
            )
        return ""

    def parsed_schedule(self) -> schedules.Schedule | None:
        """The schedule (validated on save); None when the resource has none."""
        return schedules.parse(self.schedule)

    def max_minutes(self, level: AccessLevel | None = None) -> int:
        """The maximum of a grant at ``level``: the level's own, never above the resource's."""
        if level is not None and level.max_duration_minutes:
            return min(level.max_duration_minutes, self.max_duration_minutes)
        return self.max_duration_minutes

    def approvals_needed(self, level: AccessLevel | None = None) -> int:
        if level is not None and level.approvals_required:
            return level.approvals_required
        return self.approvals_required

    def may_request(self, user: User, groups: set[str] | None = None) -> bool:
        if not self.is_active:
            return False
        if not self.requester_groups:
            return True
        if groups is None:
            groups = user.group_names()
        return open_to(self.requester_groups, groups)

    def is_approver(self, user: User, groups: set[str] | None = None) -> bool:
        return visibility.approves(user, self, groups)

    def auto_approve_rules_for(self, level: AccessLevel | None = None) -> list[dict[str, Any]]:
        """The auto-approval rules of a request at ``level``: the level's own, else the
        resource's."""
        if level is not None and level.auto_approve_rules is not None:
            return list(level.auto_approve_rules)
        return list(self.auto_approve_rules)

    def auto_approve_rule_for(
        self,
        groups: set[str],
        minutes: int,
        level: AccessLevel | None = None,
        on_call: Mapping[tuple[str, str], oncall.OnCallEntry | None] | None = None,
    ) -> dict[str, Any] | None:
        """The first rule that approves ``minutes`` for these groups, or for the person
        ``on_call`` (the answers of the providers, asked beforehand) puts on call. An
        on-call rule comes back with the entry that ``matched``."""
        for rule in self.auto_approve_rules_for(level):
            if minutes > rule["max_minutes"]:
                continue
            where = oncall.rule_schedule(rule)
            if where is None:
                if not rule_misses(rule, groups, minutes):
                    return rule
            elif on_call is not None and on_call.get(where) is not None:
                entry = on_call[where]
                assert entry is not None
                return {**rule, "matched": entry.as_dict()}
        return None


def rule_misses(rule: dict[str, Any], groups: set[str], minutes: int) -> list[str]:
    """Why an auto-approval rule does not approve a request for ``minutes`` by someone in
    ``groups``, one reason per condition it fails; empty when it approves."""
    misses = []
    where = oncall.rule_schedule(rule)
    if where is not None:
        # Who is on call is asked when the request is filed (``services``), not here.
        misses.append(f"it approves only {oncall.who(rule)} when the request is filed")
    elif rule["group"] not in groups:
        misses.append(f"the requester is not in the group {rule['group']}")
    if minutes > rule["max_minutes"]:
        misses.append(
            f"{duration_label(minutes)} asked, the rule covers up to "
            f"{duration_label(rule['max_minutes'])}"
        )
    return misses


def rule_text(rule: dict[str, Any]) -> str:
    """An auto-approval rule as people read it: ``oncall, up to 4 hours`` (an on-call rule:
    ``on call in PagerDuty schedule P123ABC, up to 4 hours``)."""
    where = oncall.rule_schedule(rule)
    who = (
        rule["group"]
        if where is None
        else f"on call in {oncall.PROVIDERS.get(where[0], where[0])} schedule {where[1]}"
    )
    return f"{who}, up to {duration_label(rule['max_minutes'])}"


# The configuration a person types, names and rules alike: none may hide characters.
RESOURCE_TEXT = (
    "name",
    "description",
    "requester_groups",
    "approver_groups",
    "break_glass_groups",
    "auto_approve_rules",
    "base_ppl",
    "schedule",
)


LEVEL_TEXT = ("name", "criteria", "auto_approve_rules")


def hidden_errors(obj: models.Model, names: Iterable[str]) -> dict[str, str]:
    """A field error for each of ``names`` whose text (or JSON) holds a hidden character
    (``apps.kit.text``); an error found by the field's own checks is kept."""
    errors = {}
    for name in names:
        problem = hidden_in(getattr(obj, name))
        if problem is not None:
            errors[name] = f"This {problem}."
    return errors


def _auto_rules_ok(rules: object) -> bool:
    return isinstance(rules, list) and all(oncall.rule_ok(r) for r in rules)


class AccessLevel(models.Model):
    """A named way to hold a resource, e.g. "Read-only" or "Full".

    Its ``criteria`` are extra PPL criteria ANDed into every grant rule at this level
    (``http_method``, ``http_path``, ``source_ip``, ...). ``rank`` orders levels by
    privilege, lower = less; an approver may lower a request's level, never raise it. The
    empty (null) settings fall back to the resource's. A resource without levels grants
    as it always did: one implicit full level with no extra criteria.
    """

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="levels")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    rank = models.PositiveSmallIntegerField(
        default=0, help_text="Lower = less privilege. Approvers may lower a level, not raise it."
    )
    criteria = models.JSONField(
        default=list,
        blank=True,
        help_text='Extra PPL criteria ANDed into each grant rule, e.g. [{"http_method": '
        '{"in": ["GET", "HEAD", "OPTIONS"]}}, {"http_path": {"starts_with": "/api/"}}].',
    )
    max_duration_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty: the resource's maximum. Never above it.",
    )
    approvals_required = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty: the resource's quorum.",
    )
    approval_stages = models.JSONField(
        null=True,
        blank=True,
        help_text="Empty: the resource's stages (or its quorum). Ordered stages for this level, "
        'e.g. [{"name": "Security", "groups": ["security"], "count": 1}].',
    )
    auto_approve_rules = models.JSONField(
        null=True,
        blank=True,
        help_text="Empty: the resource's rules. [] = never auto-approved at this level; e.g. "
        '[{"group": "engineering", "max_minutes": 240}].',
    )

    objects: ClassVar[RestrictedQuerySet[AccessLevel]] = RestrictedQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["resource", "rank", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "slug"], name="one_level_slug_per_resource"
            ),
            models.UniqueConstraint(
                fields=["resource", "rank"], name="one_level_rank_per_resource"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        problems = criteria_errors(self.criteria)
        if problems:
            errors["criteria"] = "; ".join(problems[:3])
        elif any(
            isinstance(c, dict) and set(c) & {"email", "date", "day_of_week", "time_of_day"}
            for c in self.criteria
        ):
            errors["criteria"] = (
                "email, date and the schedule's criteria are written by the portal itself."
            )
        if self.auto_approve_rules is not None and not _auto_rules_ok(self.auto_approve_rules):
            errors["auto_approve_rules"] = AUTO_RULES_HELP
        # Set but maybe not saved yet (a bootstrap file creating resource and levels at once).
        owner = getattr(self, "resource", None)
        if self.approval_stages is not None:
            groups = owner.approver_groups if owner is not None else []
            stage_problem = stages.problems(self.approval_stages, groups or [])
            if stage_problem:
                errors["approval_stages"] = stage_problem
        resource = getattr(self, "resource", None) if self.resource_id else None
        if (
            resource is not None
            and self.max_duration_minutes
            and self.max_duration_minutes > resource.max_duration_minutes
        ):
            errors["max_duration_minutes"] = (
                f"May not exceed the resource's maximum ({resource.max_duration_minutes})."
            )
        errors = {**hidden_errors(self, LEVEL_TEXT), **errors}
        if errors:
            raise ValidationError(errors)


@receiver(pre_delete, sender=Resource)
def _keep_resources_the_trail_names(sender: Any, instance: Resource, **kwargs: Any) -> None:
    """A resource the audit trail names is never deleted, whatever the path: archive it
    (``is_active``), so its history, reports and reviews keep what they point at."""
    from apps.audit.names import mentions

    if mentions("access.resource", instance.pk, resource_slug=instance.slug):
        raise ProtectedError(
            f"{instance} is named in the audit trail: archive it, do not delete it.", {instance}
        )
