"""The path ``apps.api.endpoints`` still imports ``may_see_reports`` by; it goes once the API
takes the rule from its own home (issue #23). The grant admin is ``apps.access.admin.grants``."""

from apps.access.admin.grants import may_see_reports

__all__ = ["may_see_reports"]
