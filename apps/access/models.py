"""Resources people can ask for, their requests, and the grants approval creates.

Models are declarative; every state change goes through ``apps.access.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import NotSupportedError, models
from django.db.models import Case, F, ProtectedError, Q, Value, When
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from apps.kit.text import hidden_in
from apps.ppl import criteria_errors, validate_ppl

from . import oncall, schedules, stages, targets, visibility
from .clusters import configured as configured_clusters
from .clusters import default_cluster_name
from .durations import duration_label
from .states import (
    OPEN_GRANT_STATES,
    GrantState,
    RequestKind,
    RequestState,
    SyncStatus,
)

if TYPE_CHECKING:
    from apps.accounts.models import User


AUTO_RULES_HELP = (
    'A list like [{"group": "oncall", "max_minutes": 240}] or [{"oncall": {"provider": '
    '"pagerduty", "schedule": "P123ABC"}, "max_minutes": 240}] (provider: pagerduty or opsgenie).'
)


def default_durations() -> list[int]:
    return [60, 240, 480]


class ListHasAny(models.Func):
    """True where a JSON list of strings (``field``) holds any of ``values``: what
    ``bool(set(values) & set(row.field))`` says in Python, for PostgreSQL and SQLite."""

    VENDORS = ("postgresql", "sqlite")
    output_field = models.BooleanField()
    conditional = True

    def __init__(self, field: str, values: Iterable[str]) -> None:
        self.values = sorted(values)
        super().__init__(models.F(field))

    def as_sql(self, *args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(f"ListHasAny works on {', '.join(self.VENDORS)} only")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # jsonb ?| text[]: any of the strings is a top-level element (strings only).
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} ?| %s::text[])", (*params, self.values)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        marks = ", ".join(["%s"] * len(self.values))
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS element "  # noqa: S608 - params below
            f"WHERE element.type = 'text' AND element.value IN ({marks}))",
            (*params, *self.values),
        )


_Row = TypeVar("_Row", bound=models.Model)


class RestrictedQuerySet(models.QuerySet[_Row]):
    """Rows that answer "which of these may this person see, or act on?" (``restrict``)."""

    # The path from a row to its resource ("" for a resource) and to the people it is
    # about (who may view it): what ``visibility.restrict`` needs to know of the model.
    resource_path: ClassVar[str] = "resource"
    owner_paths: ClassVar[tuple[str, ...]] = ()

    def restrict(self, user: User, action: str = visibility.VIEW) -> Self:
        """The rows ``user`` may ``action`` (``visibility.VIEW`` or ``CHANGE``): the one rule."""
        return visibility.restrict(
            self, user, action, resource=self.resource_path, owners=self.owner_paths
        )


class ResourceQuerySet(RestrictedQuerySet["Resource"]):
    resource_path = ""

    def active(self) -> ResourceQuerySet:
        return self.filter(is_active=True)

    def requestable_by(self, user: User) -> list[Resource]:
        groups = user.group_names()
        resources = self.active().order_by("name").prefetch_related("levels")
        return [r for r in resources if r.may_request(user, groups)]


def open_to(requester_groups: list[str], groups: set[str]) -> bool:
    """Whether people in ``groups`` may request a resource with these requester groups
    (none: everyone). ``Resource.may_request`` for an active resource, from its columns."""
    return not requester_groups or bool(groups & set(requester_groups))


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


def pending_first() -> Case:
    """0 for a pending request, 1 otherwise: the admin lists pending requests first. The
    admin orders by this expression and an index (``request_admin_order``) holds it."""
    return Case(
        When(state=RequestState.PENDING, then=Value(0)),
        default=Value(1),
        output_field=models.IntegerField(),
    )


class AccessRequestQuerySet(RestrictedQuerySet["AccessRequest"]):
    owner_paths = ("requester", "filed_by")

    def pending(self) -> AccessRequestQuerySet:
        return self.filter(state=RequestState.PENDING)

    def due_for_expiry(self, now: datetime) -> AccessRequestQuerySet:
        """Pending requests that waited too long, or whose resource was archived."""
        return self.pending().filter(Q(expires_at__lte=now) | Q(resource__is_active=False))

    def open_for(self, user: User, resource: Resource) -> AccessRequestQuerySet:
        return self.pending().filter(requester=user, resource=resource)


class AccessRequest(models.Model):
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who filed it: the requester, or an approver acting on their behalf.",
    )
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=16, choices=RequestKind.choices, default=RequestKind.NEW)
    extends_grant = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="extension_requests"
    )
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The level asked for; empty on resources without levels.",
    )
    approved_level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A lower level an approver chose; empty: the level asked for.",
    )
    duration_minutes = models.PositiveIntegerField()
    start_at = models.DateTimeField(null=True, blank=True, help_text="Empty: start when approved.")
    justification = models.TextField(blank=True)
    ticket = models.CharField(max_length=120, blank=True)
    state = models.CharField(
        max_length=16, choices=RequestState.choices, default=RequestState.PENDING
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Undecided by then, the request expires.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    approved_duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    auto_approved_rule = models.JSONField(null=True, blank=True)
    auto_approval_note = models.TextField(
        blank=True,
        help_text="Why an on-call rule could not auto-approve it (the provider could not be "
        "asked), so it waits for an approver.",
    )
    reminded_at = models.DateTimeField(
        null=True, blank=True, help_text="When approvers were told it waits too long."
    )

    objects: ClassVar[AccessRequestQuerySet] = AccessRequestQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at"]
        permissions = [("decide_accessrequest", "Can approve or reject access requests")]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "resource"],
                condition=Q(state="pending"),
                name="one_pending_request_per_user_and_resource",
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            # A person's requests newest first (the dashboard, the API's pages): a page
            # reads its rows off the index, however long the person's history.
            models.Index(fields=["requester", "-created_at", "-id"], name="access_req_mine_newest"),
            # The admin's order (pending first, newest first): the changelist reads its page
            # from this index instead of sorting every visible request.
            models.Index(
                pending_first(), F("created_at").desc(), F("id").desc(), name="request_admin_order"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.requester} → {self.resource} ({self.get_state_display()})"

    @property
    def resource_slug_for_audit(self) -> str:
        return self.resource.slug

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def effective_level(self) -> AccessLevel | None:
        """The level a grant gets: the approver's lower choice, else the one asked for."""
        return self.approved_level or self.level


class ApprovalQuerySet(RestrictedQuerySet["Approval"]):
    resource_path = "request__resource"
    owner_paths = ("request__requester", "request__filed_by")


class Approval(models.Model):
    """One approver's yes on a request (quorum counts distinct approvers), with the
    conditions that approver set. Under a quorum the grant takes the most restrictive
    conditions of the approvals that count (``services.strictest_conditions``)."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    note = models.TextField(blank=True)
    duration_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="The shorter duration this approver set; empty: as asked."
    )
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The lower level this approver set; empty: as asked.",
    )
    stage = models.PositiveSmallIntegerField(
        default=1, help_text="The approval stage it was given in (1 without stages)."
    )

    objects: ClassVar[ApprovalQuerySet] = ApprovalQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_approval_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved #{self.request_id}"


class GrantQuerySet(RestrictedQuerySet["Grant"]):
    owner_paths = ("user",)

    def open(self) -> GrantQuerySet:
        return self.filter(state__in=OPEN_GRANT_STATES)

    def active_at(self, at: datetime) -> GrantQuerySet:
        return self.open().filter(not_before__lte=at, expires_at__gt=at)

    def due_for_activation(self, now: datetime) -> GrantQuerySet:
        return self.filter(state=GrantState.SCHEDULED, not_before__lte=now, expires_at__gt=now)

    def due_for_expiry(self, now: datetime) -> GrantQuerySet:
        return self.open().filter(expires_at__lte=now)

    def in_policy(self, resource: Resource, now: datetime) -> GrantQuerySet:
        """Grants the resource's policy must carry: not revoked, window not yet over."""
        return self.filter(resource=resource, state__in=OPEN_GRANT_STATES, expires_at__gt=now)

    def removal_overdue(self, now: datetime) -> GrantQuerySet:
        """Revoked grants whose window is still open and whose removal Pomerium has not
        confirmed within ``ZERO_REMOVAL_ALERT_SECONDS``: the user may still get in. On a
        target that cannot close a rule by itself (``targets.closes_by_itself``) the same
        holds for a grant whose end passed that long ago: only the worker removes its rule.
        """
        threshold = now - timedelta(seconds=settings.ZERO_REMOVAL_ALERT_SECONDS)
        overdue = Q(state=GrantState.REVOKED, revoked_at__lte=threshold, expires_at__gt=now)
        open_ended = [n for n in configured_clusters() if not targets.closes_by_itself(n)]
        if open_ended:
            overdue |= Q(resource__cluster__in=open_ended, expires_at__lte=threshold)
        return self.filter(overdue).exclude(sync_status=SyncStatus.REMOVED)

    def needing_review(self) -> GrantQuerySet:
        return self.filter(is_break_glass=True, reviewed_at__isnull=True)


class Grant(models.Model):
    request = models.OneToOneField(AccessRequest, on_delete=models.PROTECT, related_name="grant")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants"
    )
    email = models.EmailField(help_text="The user's email when approved; what the PPL rule names.")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="grants")
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants",
        help_text="The level approved; empty on resources without levels.",
    )
    criteria = models.JSONField(
        default=list,
        blank=True,
        help_text="The extra PPL criteria this grant's rule carries, copied when it was "
        "approved (level, then schedule): editing the level later does not change it.",
    )
    schedule = models.JSONField(
        null=True, blank=True, help_text="The recurring window copied when it was approved."
    )
    not_before = models.DateTimeField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=GrantState.choices)
    created_at = models.DateTimeField()
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)
    is_break_glass = models.BooleanField(default=False)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    # Filled by the Zero sync.
    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING
    )
    sync_error = models.TextField(blank=True)
    live_at = models.DateTimeField(null=True, blank=True, help_text="Zero confirmed the rule.")
    enforced_at = models.DateTimeField(
        null=True, blank=True, help_text="When Zero applied the latest change for this grant."
    )
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When Zero confirmed the rule was gone."
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[GrantQuerySet] = GrantQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-not_before"]
        permissions = [
            ("revoke_grant", "Can revoke grants"),
            ("extend_grant", "Can extend grants"),
            ("review_grant", "Can mark break-glass grants reviewed"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "resource"],
                condition=Q(state__in=["scheduled", "active"]),
                name="one_open_grant_per_user_and_resource",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("not_before")), name="grant_window_not_empty"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "expires_at"]),
            models.Index(fields=["resource", "state"]),
            # A person's grants latest start first (the API's pages) and their open grants
            # soonest first (the dashboard's pages), without reading their ended ones.
            models.Index(fields=["user", "-not_before", "-id"], name="access_grant_mine_latest"),
            models.Index(
                fields=["user", "not_before", "id"],
                condition=models.Q(state__in=OPEN_GRANT_STATES),
                name="access_grant_mine_open",
            ),
            # The admin's order (newest window first, then id): read from the index.
            models.Index(fields=["-not_before", "-id"], name="grant_admin_order"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.resource} ({self.get_state_display()})"

    @property
    def resource_slug_for_audit(self) -> str:
        return self.resource.slug

    def is_open_at(self, now: datetime) -> bool:
        """Scheduled or active and not yet over: it can still be extended or revoked."""
        return self.state in OPEN_GRANT_STATES and self.expires_at > now

    def removal_is_overdue(self, now: datetime) -> bool:
        """The instance form of ``GrantQuerySet.removal_overdue``."""
        threshold = now - timedelta(seconds=settings.ZERO_REMOVAL_ALERT_SECONDS)
        if (
            self.expires_at <= threshold
            and self.sync_status != SyncStatus.REMOVED
            and not targets.closes_by_itself(self.resource.cluster)
        ):
            return True
        return (
            self.state == GrantState.REVOKED
            and self.revoked_at is not None
            and self.revoked_at <= threshold
            and self.expires_at > now
            and self.sync_status != SyncStatus.REMOVED
        )

    def window(self) -> dict[str, Any]:
        """The window for audit details, with the level and schedule when there are any."""
        window: dict[str, Any] = {
            "not_before": self.not_before.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        if self.level_id is not None:
            window["level"] = self.level.slug if self.level else None
        if self.schedule:
            window["schedule"] = self.schedule
        return window

    def parsed_schedule(self) -> schedules.Schedule | None:
        return schedules.parse(self.schedule)

    def access_ends_at(self) -> datetime:
        """When access really ends: the last window's close with a schedule, else the end."""
        schedule = self.parsed_schedule()
        if schedule is None:
            return self.expires_at
        return schedules.last_window_end(schedule, self.not_before, self.expires_at) or (
            self.not_before
        )


class GrantExtensionQuerySet(RestrictedQuerySet["GrantExtension"]):
    resource_path = "grant__resource"
    owner_paths = ("grant__user",)


class GrantExtension(models.Model):
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="extensions")
    extended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    old_expires_at = models.DateTimeField()
    new_expires_at = models.DateTimeField()
    reason = models.TextField()
    over_maximum = models.BooleanField(default=False)

    objects: ClassVar[GrantExtensionQuerySet] = GrantExtensionQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.grant} extended to {self.new_expires_at:%Y-%m-%d %H:%M %Z}"


@receiver(pre_delete, sender=Resource)
def _keep_resources_the_trail_names(sender: Any, instance: Resource, **kwargs: Any) -> None:
    """A resource the audit trail names is never deleted, whatever the path: archive it
    (``is_active``), so its history, reports and reviews keep what they point at."""
    from apps.audit.names import mentions

    if mentions("access.resource", instance.pk, resource_slug=instance.slug):
        raise ProtectedError(
            f"{instance} is named in the audit trail: archive it, do not delete it.", {instance}
        )
