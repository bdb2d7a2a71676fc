"""Keep each resource's Zero policy equal to its grants: the database is the truth.

``sync_resource(resource_id)`` guarantees, per call:

* **Serialised per resource.** A lease on the resource's ``PolicySync`` row, claimed
  with a conditional UPDATE (rows changed = 0 -> another sync runs: outcome ``busy``),
  is held across the HTTP calls instead of a database transaction, and released at the
  end, also on error. A crashed holder's lease lapses after ``LEASE_SECONDS``.
* **Nothing lost, little written.** ``Resource.sync_generation`` is read *before* the
  desired state, so a change committed during the sync bumps it past what this pass
  settles; the lease holder runs up to ``MAX_PASSES`` passes while that happens (and
  the change's own task finds the work done). A pass that finds ``synced_generation``
  already at the resource's generation makes no remote call at all (unless ``force``).
  The policy is written only when its managed properties differ from the desired ones.
* **Drift is named.** A remote policy that differs from what the portal last wrote was
  edited elsewhere: it is overwritten and audited as ``zero.drift_repaired`` with the
  rules added/removed and, from Zero's activity log, who edited it. The 30 s tick finds
  such edits in the activity log (``apps.pomerium.watch``) and forces a pass at once.
* **Live means enforced.** Grants become ``live``/``removed`` only once an answer about
  the write itself proves Zero applied it (its activity entry, or its changeset; never a
  remembered setting: ``remote.settle_changesets``), with that time in ``enforced_at``
  and a ``grant.enforced`` audit entry. When the cluster does not auto-apply changesets
  the portal applies its own, only when every change in it is the portal's own
  (``ZERO_APPLY_CHANGESETS``, ``identity.is_own_change``), or marks grants
  ``pending_apply`` with the reason.
* **One bad rule holds nothing back.** A grant whose copied criteria the target refuses is
  left out of the policy (``error``, ``zero.grant_rule_refused``); if Zero refuses a write
  anyway, it is written again without the grant rules Zero did not already hold. Every
  other grant and every removal is written.
* **Failures are visible.** Unsettled grants turn ``error`` with a readable reason, the
  row keeps ``last_error``, and one ``zero.sync_failed`` entry is written per failure
  streak. Messages come from the Zero client, which redacts tokens.

All per-grant outcomes and audit entries of a pass are written in one short
transaction after the remote calls.

This module is the public face of the sync; the work is done by one module per job:
``lease`` (claim/renew/release), ``passes`` (``sync_resource`` and its passes),
``writing`` (find, create, replace, remember, read back), ``moves`` (a policy moving
between targets) and ``choosing`` (what the reconcile and the tick sync, overdue
removals).
"""

from __future__ import annotations

import time  # noqa: F401  (tests patch ``sync.time.sleep``, the pause between passes)

from apps.pomerium.choosing import (
    due_at,
    flag_overdue_removals,
    resources_to_reconcile,
    resources_to_tick,
)
from apps.pomerium.desired import desired_policy
from apps.pomerium.lease import LEASE_SECONDS
from apps.pomerium.passes import (
    BUSY,
    FAILED,
    MAX_PASSES,
    MISSING,
    SYNCED,
    UP_TO_DATE,
    SyncOutcome,
    SyncRefused,
    sync_resource,
)
from apps.pomerium.writing import DuplicatePolicies, PolicyRefused

__all__ = [
    "BUSY",
    "FAILED",
    "LEASE_SECONDS",
    "MAX_PASSES",
    "MISSING",
    "SYNCED",
    "UP_TO_DATE",
    "DuplicatePolicies",
    "PolicyRefused",
    "SyncOutcome",
    "SyncRefused",
    "desired_policy",
    "due_at",
    "flag_overdue_removals",
    "resources_to_reconcile",
    "resources_to_tick",
    "sync_resource",
]
