"""Who is told what, for each domain event. Filled in by the notifications work (issue 7)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def dispatch(event: str, **ids: Any) -> None:
    log.info("notification event %s %s", event, ids)
