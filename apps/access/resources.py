"""Moved to ``apps.access.services.resources``. This path stays while the access admin and
the demo seed (other helpers' files) import it; drop it then."""

from .services.resources import ApplySummary, apply_definitions, save_levels, save_resource

__all__ = ["ApplySummary", "apply_definitions", "save_levels", "save_resource"]
