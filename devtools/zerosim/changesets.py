"""Changesets of the Zero simulator: list, apply (applying -> applied or failed), fail.

Part of ``SimState`` (see ``state`` for the model); every method takes the
state lock.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from devtools.zerosim.model import FAILED, StateBase
from devtools.zerosim.views import CHANGESET_ORDER, SimError, order

__all__ = ["ChangesetsMixin"]


class ChangesetsMixin(StateBase):
    """The changeset endpoints and controls of ``SimState``."""

    def list_changesets(
        self,
        cluster_id: str | None = None,
        status: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """Changesets as the API shows them, newest first; all unless ``limit``."""
        with self.lock:
            self._advance()
            if cluster_id not in (None, self.cluster_id):
                raise SimError(404, f"cluster {cluster_id} not found")
            newest_first = sorted(self.changesets.values(), key=lambda c: c.created_at)[::-1]
            views = [self._changeset_view(c) for c in newest_first]
            if status is not None:
                views = [v for v in views if v["status"] == status]
            if order_by:
                views = order(views, order_by, CHANGESET_ORDER)
            return self._page(views, limit, offset)

    def get_changeset(self, changeset_id: str) -> dict[str, Any]:
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise SimError(404, f"changeset {changeset_id} not found")
            return self._changeset_view(changeset)

    def pending_changeset(self) -> dict[str, Any] | None:
        """The namespace's pending changeset, if any (a Python helper for tests)."""
        with self.lock:
            self._advance()
            for changeset in self.changesets.values():
                if changeset.namespace_id == self.namespace_id and changeset.status == "pending":
                    return self._changeset_view(changeset)
            return None

    def apply_changeset(
        self, changeset_id: str, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Start applying a pending changeset; answers its status right after the call.

        ``applying`` when ``apply_delay`` > 0 (it finishes later), else ``applied``
        or the configured failure at once. Applying an applying/applied changeset
        again changes nothing; a failed or rejected one is a 409.
        """
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise SimError(404, f"changeset {changeset_id} not found")
            if changeset.status in FAILED:
                raise SimError(409, f"changeset {changeset_id} is {changeset.status}")
            if changeset.status == "pending":
                changeset.outcome = self.apply_failure
                changeset.applier = dict(user or self.api_user)
                if self.apply_delay > 0:
                    changeset.status = "applying"
                    changeset.updated_at = self._now()
                    changeset.due = time.monotonic() + self.apply_delay
                else:
                    self._finish(changeset)
            return self._changeset_view(changeset, relabel=False)

    def fail_changeset(
        self, changeset_id: str, status: str = "failed", message: str = "rejected by the cluster"
    ) -> dict[str, Any]:
        """Make a pending or applying changeset fail now (a console/cluster-side failure)."""
        if status not in FAILED:
            raise ValueError(f"status must be one of {FAILED}")
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise KeyError(changeset_id)
            if changeset.status not in ("pending", "applying"):
                raise ValueError(f"changeset {changeset_id} is already {changeset.status}")
            changeset.outcome = (status, message)
            self._finish(changeset)
            return self._changeset_view(changeset)
