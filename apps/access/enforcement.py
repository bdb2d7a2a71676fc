"""Moved to ``apps.access.services.enforcement``. This path stays while ``apps.zero`` imports
it (it is another helper's to change); drop it then."""

from .services.enforcement import MAX_REASON, confirm_live, confirm_removed, mark_sync_error

__all__ = ["MAX_REASON", "confirm_live", "confirm_removed", "mark_sync_error"]
