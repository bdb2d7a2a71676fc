"""Bookkeeping of the Zero sync: one row per resource, owned by ``apps.pomerium.sync``.

The access models hold the truth (grants, ``Resource.sync_generation``); this row only
remembers what the portal last did to the resource's Zero policy, so a sync can tell its
own writes from a hand edit, skip work that is already done, and show the admin what is
going on. Nothing here is edited by hand.
"""

from __future__ import annotations

from django.db import models


class PolicySync(models.Model):
    """The state of one resource's managed Zero policy, as the portal last saw it."""

    resource = models.OneToOneField(
        "access.Resource", on_delete=models.CASCADE, related_name="zero", editable=False
    )
    remote_policy_id = models.CharField(max_length=128, blank=True, editable=False)
    cluster_id = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="The Zero cluster whose namespace holds remote_policy_id; empty before the "
        "first sync.",
    )
    retired_policies = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Policies left in a cluster the resource moved away from, "
        "[{cluster_id, policy_id}]: deleted once the policy in the new cluster is enforced.",
    )
    synced_generation = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="The Resource.sync_generation the last successful sync settled.",
    )
    remote_digest = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="Digest of the managed properties as the portal last wrote or confirmed them; "
        "a remote policy with another digest was edited elsewhere (drift).",
    )
    last_written_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    pending_apply = models.BooleanField(
        default=False,
        editable=False,
        help_text="The portal's last change waits for a changeset apply in Zero.",
    )
    confirmed_by = models.CharField(
        max_length=16,
        blank=True,
        editable=False,
        help_text="What proved the last confirmation: the write's activity entry "
        "(activity), its changeset (changeset), or only a settings read made after the write "
        "(settings; the tick re-checks it until the activity log proves it).",
    )
    pending_changeset_ids = models.JSONField(default=list, blank=True, editable=False)
    pending_reason = models.TextField(
        blank=True,
        editable=False,
        help_text="Why the portal's change is not enforced yet, e.g. a changeset that also "
        "holds other people's changes and must be applied by a human in the Zero console.",
    )
    attempted_digests = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Digests of the portal's latest write attempts, newest last: a remote policy "
        "equal to one of them is the portal's own write whose answer was lost, not drift.",
    )
    duplicate_policy_ids = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Ids of every Zero policy carrying this resource's policy name, when there "
        "is more than one. The portal never picks one silently.",
    )
    routes = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Routes the policy is attached to: [{id, name, from}] from Zero's listing.",
    )
    due_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The next instant a grant's rule must appear or disappear, on a target that "
        "cannot open or close a window by itself (apps.pomerium.windows); a pass is queued for "
        "that second, and the tick syncs every resource whose due_at is past.",
    )
    boundary_eta = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The eta of the boundary pass last queued (apps.pomerium.tasks."
        "schedule_boundary): one chain of boundary passes per resource.",
    )
    # A lease, not a database lock: a sync must not hold a transaction open across HTTP
    # calls, so it claims the row with a conditional UPDATE and frees it when done. An
    # expired lease (a crashed worker) is simply claimed again.
    lease_owner = models.CharField(max_length=200, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "Zero policy sync"
        verbose_name_plural = "Zero policy sync"
        ordering = ["resource__name"]

    def __str__(self) -> str:
        return f"Zero policy sync of {self.resource}"


class ZeroCluster(models.Model):
    """What the portal knows about one Zero cluster it writes to: who it is there, and how
    far it has read the cluster's activity log. Written by ``apps.pomerium.identity`` and
    ``apps.pomerium.watch`` only; nothing here is edited by hand.

    The portal's own Zero user (``api_user_id``/``api_user_email``) is what Zero's activity
    log names as the author of the portal's writes. It comes from ``ZERO_API_USER_ID`` or is
    learnt once from an entry that can only be the portal's (docs/zero-api.md, "Whose
    change is it?"), and is never re-learnt: a pinned identity changes only by hand, in
    the setting.
    """

    cluster_id = models.CharField(max_length=128, unique=True, editable=False)
    api_user_id = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text="The Zero user id the activity log shows on the portal's own writes.",
    )
    api_user_email = models.CharField(max_length=254, blank=True, editable=False)
    identity_source = models.TextField(
        blank=True,
        editable=False,
        help_text="Where the identity was learnt: the policy and activity entry, and when.",
    )
    identity_learnt_at = models.DateTimeField(null=True, blank=True, editable=False)
    activity_cursor = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="updatedAt of the newest activity-log entry the tick has looked at.",
    )
    activity_cursor_ids = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Ids of the entries at the cursor's timestamp already looked at.",
    )
    activity_read_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "Zero cluster"
        ordering = ["cluster_id"]

    def __str__(self) -> str:
        return f"Zero cluster {self.cluster_id}"


class RemovalAlert(models.Model):
    """A revocation Zero had not confirmed in time, and when the approvers were told.

    One row per grant, written by ``sync.flag_overdue_removals``: its existence is what
    makes the alert go out once, not every tick.
    """

    grant = models.OneToOneField(
        "access.Grant", on_delete=models.CASCADE, related_name="+", editable=False
    )
    raised_at = models.DateTimeField(editable=False)
    revoked_at = models.DateTimeField(editable=False)

    class Meta:
        verbose_name = "overdue revocation alert"

    def __str__(self) -> str:
        return f"Revocation of grant {self.grant_id} not enforced by {self.raised_at:%H:%M:%S %Z}"
