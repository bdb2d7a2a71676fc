"""Who is told what, for each domain event: delegated to ``apps.notifications``.

Kept as the access domain's one seam to notifications, so ``events`` and ``tasks`` name a
module of their own app.
"""

from __future__ import annotations

from typing import Any


def dispatch(event: str, **ids: Any) -> None:
    """Store the notices of ``event`` (``request_id=`` / ``grant_id=``); enqueue sending."""
    from apps.notifications import services

    services.dispatch(event, **ids)
