"""Moving a resource's policy between targets: follow a move, retire the old policy.

A resource whose ``cluster`` changed has its policy created (or adopted by name) in the
new target by the next pass; the policy left in the former one is deleted only once the
new one is confirmed enforced (``zero.policy_written`` with ``deleted: true``). A deletion
that fails is kept on the row (``retired_policies``) for the next pass.
"""

from __future__ import annotations

import logging

from apps.pomerium import port
from apps.pomerium.actions import ZeroAction
from apps.pomerium.client import ZeroError, ZeroPermanentError
from apps.pomerium.models import PolicySync
from apps.pomerium.outcomes import PassResult
from apps.pomerium.port import PolicyStore

__all__ = ["follow_move", "retire_moved"]

logger = logging.getLogger("apps.pomerium.sync")


def follow_move(state: PolicySync, cluster_id: str, result: PassResult) -> PolicySync:
    """Start a move when the remembered policy lives in another cluster than the
    resource's: the old policy is queued for retirement and forgotten as "ours", so this
    pass creates (or adopts by name) the policy in the new cluster. Policy ids are unique
    in the organization, so the old id would still be found; it must not be used.

    The domain refuses a cluster change while any grant is not confirmed removed
    (``Resource.cluster_problem``), so the old policy holds no grant: only the base rules.
    """
    result.cluster_id = cluster_id
    holder = state.cluster_id  # empty: never written since clusters were recorded
    if not state.remote_policy_id or not holder or holder == cluster_id:
        return state
    retired = [
        *(state.retired_policies or []),
        {"cluster_id": holder, "policy_id": state.remote_policy_id},
    ]
    logger.info(
        "Zero policy %s of %s moves from cluster %s to %s",
        state.remote_policy_id,
        state.resource.slug,
        holder,
        cluster_id,
    )
    PolicySync.objects.filter(pk=state.pk).update(
        cluster_id=cluster_id,
        retired_policies=retired,
        remote_policy_id="",
        remote_digest="",
        attempted_digests=[],
        routes=[],
        duplicate_policy_ids=[],
        pending_apply=False,
        pending_changeset_ids=[],
        pending_reason="",
    )
    return PolicySync.objects.select_related("resource").get(pk=state.pk)


def retire_moved(client: PolicyStore, state: PolicySync, result: PassResult) -> None:
    """Delete the policies left in clusters the resource moved away from, but only once
    Zero enforces the policy in the new cluster. A deletion that fails is kept for the
    next pass (the tick keeps syncing a resource with retired policies); it does not fail
    this pass, whose grants are enforced in the new cluster."""
    pending = list(state.retired_policies or [])
    if not pending or result.pending_apply or result.confirmed_at is None:
        return
    kept: list[dict[str, str]] = []
    for old in pending:
        policy_id = str(old.get("policy_id") or "")
        if policy_id == result.policy_id and old.get("cluster_id") == client.cluster_id:
            continue  # moved back before it was deleted: that policy is ours again
        old_client, fresh = port.store_at(str(old.get("cluster_id") or ""), client)
        try:
            old_client.delete_policy(policy_id)
        except ZeroPermanentError as exc:
            if exc.status not in (404, 410):
                logger.warning("could not delete retired Zero policy %s: %s", policy_id, exc)
                kept.append(old)
                continue
        except ZeroError as exc:
            logger.warning("could not delete retired Zero policy %s: %s", policy_id, exc)
            kept.append(old)
            continue
        finally:
            if fresh:
                old_client.session.close()
        result.audit(
            ZeroAction.ZERO_POLICY_WRITTEN,
            {
                "policy_id": policy_id,
                "cluster_id": old.get("cluster_id"),
                "deleted": True,
                "reason": "the resource moved to cluster "
                f"{client.cluster_id}, where policy {result.policy_id} is enforced",
            },
        )
    result.retired = kept
