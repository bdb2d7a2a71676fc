"""The operations of ``/api/v1/``, one router per role: ``requester``, ``approver``,
``auditor``. Each reads with ``apps.access.queries`` or calls one service.

No rule lives here: who may request, decide, revoke or extend, and what a resource
allows, are the services' (and the admin's role gates, mirrored by ``require``).
The routers are added in this order, which is the order of the OpenAPI document.
"""

from __future__ import annotations

from . import approver, auditor, requester
from .api import api

for _router in (requester.router, approver.router, auditor.router):
    api.add_router("", _router)

__all__ = ["api"]
