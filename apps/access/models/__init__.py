"""Resources people can ask for, their requests, and the grants approval creates.

Models are declarative; every state change goes through ``apps.access.services``.
The package is split by noun (``resources``, ``requests``, ``grants``, and their
``querysets``); every name is re-exported here, so ``apps.access.models.X`` (and the
migrations' references) stay as they were.
"""

from .grants import Grant, GrantExtension
from .offers import breaks_glass, breaks_glass_sql, open_to, open_to_sql
from .querysets import (
    AccessRequestQuerySet,
    ApprovalQuerySet,
    GrantExtensionQuerySet,
    GrantQuerySet,
    ListHasAny,
    ResourceQuerySet,
    RestrictedQuerySet,
    pending_first,
)
from .requests import AccessRequest, Approval
from .resources import (
    AUTO_RULES_HELP,
    LEVEL_TEXT,
    RESOURCE_TEXT,
    AccessLevel,
    Resource,
    default_durations,
    hidden_errors,
    rule_misses,
    rule_text,
)

__all__ = [
    "AUTO_RULES_HELP",
    "LEVEL_TEXT",
    "RESOURCE_TEXT",
    "AccessLevel",
    "AccessRequest",
    "AccessRequestQuerySet",
    "Approval",
    "ApprovalQuerySet",
    "Grant",
    "GrantExtension",
    "GrantExtensionQuerySet",
    "GrantQuerySet",
    "ListHasAny",
    "Resource",
    "ResourceQuerySet",
    "RestrictedQuerySet",
    "breaks_glass",
    "breaks_glass_sql",
    "default_durations",
    "hidden_errors",
    "open_to",
    "open_to_sql",
    "pending_first",
    "rule_misses",
    "rule_text",
]
