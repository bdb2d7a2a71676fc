"""The Django admin is the approval UI, so it is locked down.

Requests and grants are read-only here (no add, no edit, no delete): they change only
through the confirmed actions (``actions``), each of which calls a service per object
and is guarded by a custom permission. Resources are configuration: editable by those
with the change permission, never deleted (archive instead), and every save is audited and
re-syncs the resource's Zero policy in the same transaction (``resources.save_resource``).
"""

from .actions import ParentViewInline, ReadOnlyAdmin
from .grants import GrantAdmin
from .requests import AccessRequestAdmin
from .resources import ResourceAdmin

__all__ = ["AccessRequestAdmin", "GrantAdmin", "ParentViewInline", "ReadOnlyAdmin", "ResourceAdmin"]
